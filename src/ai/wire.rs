//! The two wire formats the gateway speaks (OpenAI Chat Completions, Anthropic Messages):
//! request fields it reads, the cache key, token usage, and errors in each provider's shape.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Which API a client called, and so which shapes its requests, answers and errors have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    pub fn endpoint(self) -> &'static str {
        match self {
            Api::OpenAi => "/v1/chat/completions",
            Api::Anthropic => "/v1/messages",
        }
    }

    /// The path appended to a provider's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Api::OpenAi => "/chat/completions",
            Api::Anthropic => "/v1/messages",
        }
    }
}

/// Prompt and completion tokens of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u32,
    pub completion: u32,
}

impl Usage {
    pub fn total(self) -> u32 {
        self.prompt.saturating_add(self.completion)
    }

    /// From a response body's `usage` object, in either format.
    pub fn from_json(api: Api, usage: &Value) -> Option<Usage> {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64).map(|v| v as u32);
        match api {
            Api::OpenAi => Some(Usage {
                prompt: n("prompt_tokens")?,
                completion: n("completion_tokens").unwrap_or(0),
            }),
            Api::Anthropic => Some(Usage {
                // Cached prompt tokens are prompt tokens too.
                prompt: n("input_tokens")?
                    + n("cache_creation_input_tokens").unwrap_or(0)
                    + n("cache_read_input_tokens").unwrap_or(0),
                completion: n("output_tokens").unwrap_or(0),
            }),
        }
    }
}

/// A rough token count (about four characters per token) for limits before a call and
/// for the demo provider; real counts come from the provider's `usage`.
pub fn estimate_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// Characters of text in the prompt: message contents and the Anthropic `system`.
pub fn prompt_chars(body: &Map<String, Value>) -> usize {
    fn text_len(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(parts) => parts.iter().map(text_len).sum(),
            Value::Object(o) => o.get("text").map_or(0, text_len),
            _ => 0,
        }
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |m| {
            m.iter()
                .map(|msg| msg.get("content").map_or(0, text_len))
                .sum()
        });
    messages + body.get("system").map_or(0, text_len)
}

/// The user a call is for: the `x-growth-user-id` header, OpenAI's `user`, or
/// Anthropic's `metadata.user_id`.
pub fn user_of(headers: &HeaderMap, body: &Map<String, Value>) -> Option<String> {
    let from_header = headers
        .get("x-growth-user-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    from_header
        .or_else(|| body.get("user").and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            body.get("metadata")
                .and_then(|m| m.get("user_id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|u| !u.is_empty())
        .map(|u| u.chars().take(256).collect())
}

/// Fields that never change what the model writes, so they do not split the cache.
const NOT_IN_KEY: &[&str] = &["stream", "stream_options", "user", "metadata"];

/// The cache key: a hash of the API and the canonical request (keys sorted, no
/// whitespace), without the fields in `NOT_IN_KEY`.
pub fn cache_key(api: Api, body: &Map<String, Value>) -> u128 {
    let mut out = Vec::with_capacity(512);
    out.push(match api {
        Api::OpenAi => b'o',
        Api::Anthropic => b'a',
    });
    let mut keys: Vec<&String> = body
        .keys()
        .filter(|k| !NOT_IN_KEY.contains(&k.as_str()))
        .collect();
    keys.sort();
    out.push(b'{');
    for k in keys {
        canonical(&Value::String(k.clone()), &mut out);
        out.push(b':');
        canonical(&body[k], &mut out);
        out.push(b',');
    }
    out.push(b'}');
    let digest = Sha256::digest(&out);
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for k in keys {
                canonical(&Value::String(k.clone()), out);
                out.push(b':');
                canonical(&map[k], out);
                out.push(b',');
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for item in items {
                canonical(item, out);
                out.push(b',');
            }
            out.push(b']');
        }
        // Scalars have one serialisation each in serde_json.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// Collapses runs of whitespace in message text to one space and trims it. Returns the
/// characters removed.
pub fn normalize_whitespace(body: &mut Map<String, Value>) -> usize {
    fn squash(s: &mut String) -> usize {
        let before = s.chars().count();
        let squashed = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let removed = before - squashed.chars().count();
        *s = squashed;
        removed
    }
    fn walk(v: &mut Value) -> usize {
        match v {
            Value::String(s) => squash(s),
            Value::Array(parts) => parts.iter_mut().map(walk).sum(),
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("text") => {
                o.get_mut("text").map_or(0, walk)
            }
            _ => 0,
        }
    }
    let mut removed = 0;
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            if let Some(content) = m.get_mut("content") {
                removed += walk(content);
            }
        }
    }
    if let Some(system) = body.get_mut("system") {
        removed += walk(system);
    }
    removed
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    User,
    Key,
    Global,
    Tokens,
}

impl LimitScope {
    fn name(self) -> &'static str {
        match self {
            LimitScope::User => "per-user request",
            LimitScope::Key => "per-key request",
            LimitScope::Global => "global request",
            LimitScope::Tokens => "per-user token",
        }
    }
}

/// Everything that can go wrong in a gateway call; rendered in the caller's API shape.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("missing or invalid gateway key; send it as Authorization: Bearer <key> or x-api-key")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    ModelNotFound(String),
    #[error("{} limit of {limit} per minute reached; retry in {retry_after} s", .scope.name())]
    RateLimited {
        scope: LimitScope,
        limit: u32,
        retry_after: u64,
    },
    /// The provider answered an error; `body` is its own error JSON when it had one.
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        message: String,
        body: Option<Value>,
    },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("server is shutting down")]
    ShuttingDown,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error `type` each API uses for this status.
    fn kind(&self, api: Api) -> &'static str {
        let status = self.status().as_u16();
        match (api, status) {
            (Api::OpenAi, 401) => "invalid_request_error",
            (Api::OpenAi, 429) => match self {
                GatewayError::RateLimited {
                    scope: LimitScope::Tokens,
                    ..
                } => "tokens",
                _ => "requests",
            },
            (Api::OpenAi, 400..=499) => "invalid_request_error",
            (Api::OpenAi, _) => "server_error",
            (Api::Anthropic, 401) => "authentication_error",
            (Api::Anthropic, 404) => "not_found_error",
            (Api::Anthropic, 413) => "request_too_large",
            (Api::Anthropic, 429) => "rate_limit_error",
            (Api::Anthropic, 400..=499) => "invalid_request_error",
            (Api::Anthropic, 529) => "overloaded_error",
            (Api::Anthropic, _) => "api_error",
        }
    }

    fn code(&self) -> Value {
        match self {
            GatewayError::Unauthorized => json!("invalid_api_key"),
            GatewayError::ModelNotFound(_) => json!("model_not_found"),
            GatewayError::RateLimited { .. } => json!("rate_limit_exceeded"),
            GatewayError::Timeout(_) => json!("timeout"),
            GatewayError::TooLarge(_) => json!("request_too_large"),
            _ => Value::Null,
        }
    }

    /// The JSON body in `api`'s error shape. An upstream error of the same shape is
    /// passed through as the provider wrote it.
    pub fn body(&self, api: Api) -> Value {
        if let GatewayError::Upstream {
            body: Some(body), ..
        } = self
        {
            let same_shape = match api {
                Api::OpenAi => body.get("error").is_some_and(Value::is_object),
                Api::Anthropic => body.get("type").and_then(Value::as_str) == Some("error"),
            };
            if same_shape {
                return body.clone();
            }
        }
        let message = self.to_string();
        match api {
            Api::OpenAi => json!({ "error": {
                "message": message, "type": self.kind(api), "param": null, "code": self.code(),
            } }),
            Api::Anthropic => json!({ "type": "error", "error": {
                "type": self.kind(api), "message": message,
            } }),
        }
    }

    pub fn render(&self, api: Api) -> Response {
        let mut resp = (self.status(), axum::Json(self.body(api))).into_response();
        if let GatewayError::RateLimited {
            scope,
            limit,
            retry_after,
        } = self
        {
            let h = resp.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            let suffix = if *scope == LimitScope::Tokens {
                "tokens"
            } else {
                "requests"
            };
            let reset = HeaderValue::from_str(&format!("{retry_after}s"))
                .unwrap_or(HeaderValue::from_static("1s"));
            for (name, value) in [
                ("x-ratelimit-limit", HeaderValue::from(*limit)),
                ("x-ratelimit-remaining", HeaderValue::from(0)),
                ("x-ratelimit-reset", HeaderValue::from(*retry_after)),
            ] {
                if let Ok(n) = header::HeaderName::try_from(format!("{name}-{suffix}")) {
                    h.insert(
                        n,
                        if name == "x-ratelimit-reset" {
                            reset.clone()
                        } else {
                            value.clone()
                        },
                    );
                }
                h.insert(name, value);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn key_ignores_order_whitespace_user_and_stream() {
        let a: Value = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"user":"u1"}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            "{ \"temperature\": 0.2,\n \"messages\": [ {\"content\": \"hi\", \"role\": \"user\"} ],\n \"model\": \"m\", \"stream\": true, \"user\": \"u2\" }",
        )
        .unwrap();
        assert_eq!(
            cache_key(Api::OpenAi, &map(a.clone())),
            cache_key(Api::OpenAi, &map(b))
        );
        let mut c = map(a.clone());
        c.insert("temperature".into(), json!(0.3));
        assert_ne!(
            cache_key(Api::OpenAi, &map(a.clone())),
            cache_key(Api::OpenAi, &c)
        );
        assert_ne!(
            cache_key(Api::OpenAi, &map(a.clone())),
            cache_key(Api::Anthropic, &map(a))
        );
    }

    #[test]
    fn whitespace_normalisation_counts_what_it_removed() {
        let mut body = map(json!({"messages": [
            {"role": "user", "content": "  plan   my\n\n week "},
            {"role": "user", "content": [{"type": "text", "text": "a  b"}]}
        ], "system": "be  brief"}));
        let removed = normalize_whitespace(&mut body);
        assert_eq!(body["messages"][0]["content"], "plan my week");
        assert_eq!(body["messages"][1]["content"][0]["text"], "a b");
        assert_eq!(body["system"], "be brief");
        assert_eq!(removed, 7 + 1 + 1);
    }

    #[test]
    fn errors_take_each_providers_shape() {
        let e = GatewayError::RateLimited {
            scope: LimitScope::User,
            limit: 100,
            retry_after: 3,
        };
        let o = e.body(Api::OpenAi);
        assert_eq!(o["error"]["type"], "requests");
        assert_eq!(o["error"]["code"], "rate_limit_exceeded");
        let a = e.body(Api::Anthropic);
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "rate_limit_error");
        let r = e.render(Api::OpenAi);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "3");
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "100");
        assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    }

    #[test]
    fn users_come_from_header_body_or_metadata() {
        let mut h = HeaderMap::new();
        let body = map(json!({"metadata": {"user_id": "anthropic-user"}}));
        assert_eq!(user_of(&h, &body).as_deref(), Some("anthropic-user"));
        let body2 = map(json!({"user": "openai-user"}));
        assert_eq!(user_of(&h, &body2).as_deref(), Some("openai-user"));
        h.insert("x-growth-user-id", HeaderValue::from_static("header-user"));
        assert_eq!(user_of(&h, &body2).as_deref(), Some("header-user"));
    }
}
