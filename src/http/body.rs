//! Ingest bodies: one JSON object or an array, sent as `application/json` or as a
//! `text/plain` beacon, read under a byte limit and parsed with item-level errors.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON object body read under the ingest body limit: 400 when it is not an object,
/// 422 naming the field that breaks a rule.
pub struct JsonObject<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = read(&parts.headers, body, state.config.ingest.body_limit).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::Malformed("expected a JSON object".into()));
        }
        parse_value(value, None).map(JsonObject)
    }
}

/// Reads the whole body, refusing more than `limit` bytes and unknown content types.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !matches!(essence.as_str(), "application/json" | "text/plain" | "") {
            return Err(ApiError::UnsupportedMediaType(ct.to_string()));
        }
    }
    // No early refusal on Content-Length: reading up to the limit first lets a client that
    // is still sending a slightly oversized body receive the 413 instead of a broken pipe.
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::TooLarge { limit }
        } else {
            ApiError::Malformed(format!("could not read the request body: {e}"))
        }
    })
}

/// Parses one object or an array of at most `max_items` objects into `T`s.
/// The flag tells whether the body was an array, so errors can name an item index.
pub fn parse_items<T: DeserializeOwned>(
    body: &[u8],
    max_items: usize,
) -> Result<(Vec<T>, bool), ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ApiError::Malformed(
            "empty body; send a JSON object or an array of objects".into(),
        )),
        Some(b'[') => {
            let items: Vec<T> = parse(body)?;
            if items.len() > max_items {
                return Err(ApiError::invalid(
                    Some(max_items),
                    "(batch)",
                    format!(
                        "is past the end of a batch: {} items sent, at most {max_items} per request",
                        items.len()
                    ),
                ));
            }
            Ok((items, true))
        }
        Some(b'{') => Ok((vec![parse(body)?], false)),
        Some(_) => Err(ApiError::Malformed(
            "expected a JSON object or an array of objects".into(),
        )),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Most bodies are valid: they are read without tracking the path (which allocates per
    // key), and only a refused one is read again with it, to name the field.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(to_api_error)?;
    de.end()
        .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Deserialises one item already parsed as JSON (for streams that take several shapes),
/// with the same errors as `parse_items`; `index` is the item's place in a batch.
pub fn parse_value<T: DeserializeOwned>(
    value: serde_json::Value,
    index: Option<usize>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| match to_api_error(e) {
        ApiError::Invalid { field, message, .. } => ApiError::Invalid {
            index,
            field,
            message,
        },
        other => other,
    })
}

fn to_api_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut index = None;
    let mut field = None;
    for seg in e.path().iter() {
        match seg {
            Segment::Seq { index: i } if index.is_none() && field.is_none() => index = Some(*i),
            Segment::Map { key } if field.is_none() => field = Some(key.clone()),
            _ => {}
        }
    }
    let inner = e.into_inner();
    if !inner.is_data() {
        return ApiError::Malformed(format!("malformed JSON: {inner}"));
    }
    let full = inner.to_string();
    // serde_json appends the position; the item index and field say more.
    let message = match full.rfind(" at line ") {
        Some(cut) => full[..cut].to_string(),
        None => full,
    };
    // Unknown and missing fields fail before the path reaches the key: take it from the message.
    let field = field
        .or_else(|| backticked(&message))
        .unwrap_or_else(|| "(item)".into());
    let message = if message.starts_with("unknown field") {
        "is not a known field of this stream".to_string()
    } else if message.starts_with("missing field") {
        "is required".to_string()
    } else {
        format!("is invalid: {message}")
    };
    ApiError::invalid(index, field, message)
}

fn backticked(s: &str) -> Option<String> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(s[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        value: Option<f64>,
    }

    fn err(body: &str) -> ApiError {
        parse_items::<Item>(body.as_bytes(), 3).unwrap_err()
    }

    fn fields(e: ApiError) -> (Option<usize>, String) {
        match e {
            ApiError::Invalid { index, field, .. } => (index, field),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn one_or_many() {
        assert_eq!(
            parse_items::<Item>(br#"{"name":"a"}"#, 3).unwrap().0.len(),
            1
        );
        let (items, batch) =
            parse_items::<Item>(br#" [{"name":"a"},{"name":"b","value":1}]"#, 3).unwrap();
        assert_eq!((items.len(), batch), (2, true));
    }

    #[test]
    fn errors_name_index_and_field() {
        assert_eq!(
            fields(err(r#"[{"name":"a"},{"name":"b","value":"x"}]"#)),
            (Some(1), "value".into())
        );
        assert_eq!(
            fields(err(r#"[{"name":"a"},{"name":"b","colour":1}]"#)),
            (Some(1), "colour".into())
        );
        assert_eq!(
            fields(err(r#"[{"name":"a"},{"value":2}]"#)),
            (Some(1), "name".into())
        );
        assert_eq!(fields(err(r#"{"name":5}"#)), (None, "name".into()));
        assert_eq!(
            fields(err(
                r#"[{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"}]"#
            ))
            .0,
            Some(3)
        );
    }

    #[test]
    fn malformed_is_400_kind() {
        for body in ["", "{", "[{", "nope", r#"{"name":"a"} trailing"#, "7"] {
            assert!(matches!(err(body), ApiError::Malformed(_)), "{body:?}");
        }
    }

    proptest::proptest! {
        /// Arbitrary bodies, as text and as bytes: items or a 400/422, never a panic.
        #[test]
        fn any_body(text in "\\PC*", bytes in proptest::prelude::any::<Vec<u8>>()) {
            for body in [text.as_bytes(), &bytes[..]] {
                let _ = parse_items::<Item>(body, 3);
                let _ = parse_items::<serde_json::Value>(body, 3);
            }
            let _ = backticked(&text);
            let wrapped = format!("[{{\"name\":{}}}]", serde_json::Value::String(text.clone()));
            let _ = parse_items::<Item>(wrapped.as_bytes(), 3);
        }

        /// Arbitrary Content-Type headers: accepted or 415, never a panic.
        #[test]
        fn any_content_type(ct in "\\PC*") {
            let mut h = HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_str(&ct) {
                h.insert(header::CONTENT_TYPE, v);
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = rt.block_on(read(&h, Body::from("{}"), 16));
        }
    }
}
