//! Reading a call: the gateway key first, then the body every API shares (a model, the
//! messages) and what the headers ask of the cache and of the provider.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::Gateway;
use crate::ai::cache::Directives;
use crate::ai::upstream::Forward;
use crate::ai::wire::{self, Api, GatewayError};

/// One parsed client request.
pub struct Call {
    pub api: Api,
    pub endpoint: &'static str,
    pub body: Map<String, Value>,
    /// The body as received, sent on unchanged when nothing had to change.
    pub raw: Bytes,
    pub key: usize,
    pub user: Option<String>,
    pub directives: Directives,
    pub forward: Forward,
    pub ip: Option<String>,
    pub stream: bool,
    /// The client asked for OpenAI's usage chunk itself.
    pub include_usage: bool,
}

impl Gateway {
    /// Reads the parts of a request every call needs. The key is checked first.
    pub fn parse(
        &self,
        api: Api,
        headers: &HeaderMap,
        raw: Bytes,
        ip: Option<String>,
    ) -> Result<Call, GatewayError> {
        let key = self.keys.check(headers).ok_or(GatewayError::Unauthorized)?;
        let body: Map<String, Value> = match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(GatewayError::BadRequest(
                    "the request body must be a JSON object".into(),
                ))
            }
            Err(e) => {
                return Err(GatewayError::BadRequest(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        };
        match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => {}
            _ => {
                return Err(GatewayError::BadRequest(
                    "`model` is required and must be a string".into(),
                ))
            }
        }
        if !body.get("messages").is_some_and(Value::is_array) {
            return Err(GatewayError::BadRequest(
                "`messages` is required and must be an array".into(),
            ));
        }
        // A whole number, written 1024 or 1024.0 (JSON Schema's `integer` is both).
        let whole = |v: &Value| {
            v.is_u64()
                || v.as_f64().is_some_and(|f| {
                    f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0
                })
        };
        if api == Api::Anthropic && !body.get("max_tokens").is_some_and(whole) {
            return Err(GatewayError::BadRequest(
                "max_tokens: Field required (a positive integer)".into(),
            ));
        }
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Call {
            api,
            endpoint: api.endpoint(),
            user: wire::user_of(headers, &body),
            directives: if self.cache_enabled {
                Directives::from_headers(headers)
            } else {
                Directives::none()
            },
            forward: Forward {
                anthropic_version: headers.get("anthropic-version").cloned(),
                anthropic_beta: headers.get("anthropic-beta").cloned(),
            },
            body,
            raw,
            key,
            ip,
            stream,
            include_usage,
        })
    }
}
