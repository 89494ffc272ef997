//! The guide's `generateAIResponse(model, prompt, {parameters, userId, cached})` as one
//! JSON call: a prompt in, the text out, through the same gateway path as the SDKs.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::cache::Directives;
use super::gateway::{CacheStatus, Gateway, Outcome, Ran};
use super::wire::{Api, GatewayError};
use crate::error::ApiError;

/// The body of `POST /api/ai/generate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = GenerateRequest)]
pub struct GenerateIn {
    #[schema(min_length = 1)]
    model: String,
    prompt: String,
    /// Provider parameters, e.g. max_tokens, temperature.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Map<String, Value>,
    /// The end user (also accepted as `user_id`).
    #[serde(default, alias = "user_id")]
    user_id: Option<String>,
    /// Whether the gateway's cache may answer and keep it; default true.
    #[serde(default = "yes")]
    cached: bool,
    #[serde(default)]
    system: Option<String>,
}

fn yes() -> bool {
    true
}

pub const ENDPOINT: &str = "/api/ai/generate";

/// Anthropic requires a maximum; this one is used when the parameters give none.
const DEFAULT_MAX_TOKENS: u64 = 1024;

pub fn api_error(e: GatewayError) -> ApiError {
    match e {
        GatewayError::Unauthorized => ApiError::GatewayKey,
        GatewayError::BadRequest(m) => ApiError::Malformed(m),
        GatewayError::TooLarge(limit) => ApiError::TooLarge { limit },
        GatewayError::ModelNotFound(m) => ApiError::invalid(None, "model", m),
        GatewayError::RateLimited { retry_after, .. } => ApiError::RateLimited { retry_after },
        GatewayError::ShuttingDown => ApiError::ShuttingDown,
        e @ (GatewayError::Upstream { .. }
        | GatewayError::Timeout(_)
        | GatewayError::Unreachable(_)) => ApiError::Upstream {
            status: e.status(),
            message: e.to_string(),
        },
    }
}

pub async fn run(
    gw: &Arc<Gateway>,
    headers: &HeaderMap,
    raw: &[u8],
    ip: Option<String>,
) -> Result<Response, ApiError> {
    let input: GenerateIn = match serde_json::from_slice(raw) {
        Ok(i) => i,
        Err(e) => {
            let e = GatewayError::BadRequest(format!("invalid generate request: {e}"));
            gw.record_refused(ENDPOINT, raw, ip, &e);
            return Err(api_error(e));
        }
    };
    if input.model.is_empty() {
        let e = GatewayError::BadRequest("`model` must not be empty".into());
        gw.record_refused(ENDPOINT, raw, ip, &e);
        return Err(api_error(e));
    }
    let api = gw.providers.api_for(&input.model);
    let mut body = input.parameters.clone();
    for reserved in ["model", "messages", "stream", "stream_options"] {
        body.remove(reserved);
    }
    body.insert("model".into(), json!(input.model));
    let mut messages = Vec::new();
    match (&input.system, api) {
        (Some(s), Api::OpenAi) => messages.push(json!({ "role": "system", "content": s })),
        (Some(s), Api::Anthropic) => {
            body.insert("system".into(), json!(s));
        }
        (None, _) => {}
    }
    messages.push(json!({ "role": "user", "content": input.prompt }));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(user) = &input.user_id {
        match api {
            Api::OpenAi => body.insert("user".into(), json!(user)),
            Api::Anthropic => body.insert("metadata".into(), json!({ "user_id": user })),
        };
    }
    if api == Api::Anthropic && !body.contains_key("max_tokens") {
        body.insert("max_tokens".into(), json!(DEFAULT_MAX_TOKENS));
    }
    let raw = Bytes::from(Value::Object(body).to_string());
    let mut call = match gw.parse(api, headers, raw.clone(), ip.clone()) {
        Ok(c) => c,
        Err(e) => {
            gw.record_refused(ENDPOINT, &raw, ip, &e);
            return Err(api_error(e));
        }
    };
    call.endpoint = ENDPOINT;
    if !input.cached {
        call.directives = Directives::none();
    }
    let call_read = call.directives.read;
    let Ran {
        result, request_id, ..
    } = gw.run(call).await;
    let (answer, cache) = match result.map_err(api_error)? {
        Outcome::Answer { answer, cache } => (answer, cache),
        Outcome::Stream(_) => return Err(ApiError::Internal("generate does not stream".into())),
    };
    let full: Value = serde_json::from_slice(&answer.json()).unwrap_or_default();
    let content = match api {
        Api::OpenAi => full["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        Api::Anthropic => full["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<String>()
            })
            .unwrap_or_default(),
    };
    let header = if cache == CacheStatus::Hit {
        "HIT"
    } else if call_read {
        "MISS"
    } else {
        "BYPASS"
    };
    let mut resp = Json(json!({
        "request_id": request_id,
        "model": answer.model,
        "provider": &*answer.provider,
        "content": content,
        "cached": cache == CacheStatus::Hit,
        "demo": answer.demo,
        "usage": {
            "prompt_tokens": answer.usage.prompt,
            "completion_tokens": answer.usage.completion,
            "total_tokens": answer.usage.total(),
        },
        "response": full,
    }))
    .into_response();
    resp.headers_mut().insert(
        "x-growth-cache",
        axum::http::HeaderValue::from_static(header),
    );
    Ok(resp)
}
