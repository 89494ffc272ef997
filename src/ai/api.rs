//! HTTP handlers: the gateway endpoints (`/v1/...`, `/api/ai/generate`) and AI metric reads.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::json;
use utoipa::OpenApi;

use super::docs::{
    AnthropicError, ChatCompletionRequest, GatewayHeaders, GenerateErrors, GenerateRequest,
    MessagesRequest, OpenAiError, ProviderErrors,
};
use super::gateway::{Gateway, BODY_LIMIT};
use super::ingest::AiMetricIn;
use super::wire::{Api, GatewayError};
use super::{generate, reads};
use crate::error::ApiError;
use crate::http::auth::client_ip;
use crate::http::ingest::Accepted;
use crate::http::openapi::{IngestErrors, OneOrMany, ReadErrors};
use crate::http::{CachedRead, Window, WindowQuery};
use crate::state::AppState;

/// The body of `POST /api/analytics/ai-performance`.
type AiCallsBody = OneOrMany<AiMetricIn>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    paths(post, get, chat_completions, messages, models, generate),
    components(schemas(OpenAiError, AnthropicError))
)]
pub(super) struct Doc;

/// Carries the OpenAPI description of `POST /api/analytics/ai-performance`.
#[utoipa::path(post, path = "/api/analytics/ai-performance", tag = "AI",
    summary = "Record one AI call's metrics or a batch of them",
    description = "For calls that do not go through the gateway (the gateway records its own). Answers 200 only \
        after the rows are committed. A batch with one invalid item writes nothing. `text/plain` bodies \
        (navigator.sendBeacon) are parsed as JSON too.",
    request_body(content = AiCallsBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post() {}

/// `GET /api/analytics/ai-performance`.
#[utoipa::path(get, path = "/api/analytics/ai-performance", tag = "AI",
    summary = "AI call totals, error and cache-hit rates, latency percentiles, per-model breakdown, newest calls",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn get(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::summary(&state.store, window)).await
}

/// `POST /v1/chat/completions`: OpenAI's API through the gateway.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "AI gateway",
    summary = "OpenAI Chat Completions through the gateway",
    description = "Cached (streams too), rate limited, retried with fallbacks, recorded in ai_performance_metrics. \
        Errors use OpenAI's shape {error: {message, type, param, code}}. The body is forwarded as it is; \
        the gateway itself checks only what the schema states.",
    params(GatewayHeaders),
    request_body(content = ChatCompletionRequest, content_type = "application/json"),
    security(("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when `stream` is true). \
            Headers: x-growth-cache HIT|MISS|BYPASS, x-request-id, x-growth-provider, x-growth-demo on demo answers",
            content((Object = "application/json"), (Object = "text/event-stream"))),
        ProviderErrors<OpenAiError>))]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    req: Request,
) -> Response {
    proxy(&state, &gw, Api::OpenAi, req).await
}

/// `POST /v1/messages`: Anthropic's API through the gateway.
#[utoipa::path(post, path = "/v1/messages", tag = "AI gateway",
    summary = "Anthropic Messages through the gateway",
    description = "As /v1/chat/completions, in Anthropic's format; errors use {type: \"error\", error: {type, message}}.",
    params(GatewayHeaders),
    request_body(content = MessagesRequest, content_type = "application/json"),
    security(("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when `stream` is true)",
            content((Object = "application/json"), (Object = "text/event-stream"))),
        ProviderErrors<AnthropicError>))]
pub async fn messages(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    req: Request,
) -> Response {
    proxy(&state, &gw, Api::Anthropic, req).await
}

async fn proxy(state: &AppState, gw: &Arc<Gateway>, api: Api, req: Request) -> Response {
    let (headers, ip, body) = split(state, gw, req);
    // Calls without a valid key are not recorded: anyone could fill the table with them.
    if gw.keys.check(&headers).is_none() {
        return refused(api, &GatewayError::Unauthorized);
    }
    let raw = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) => {
            gw.record_refused(api.endpoint(), b"", ip, &e);
            return refused(api, &e);
        }
    };
    match gw.parse(api, &headers, raw.clone(), ip.clone()) {
        Ok(call) => gw.respond(call).await,
        Err(e) => {
            gw.record_refused(api.endpoint(), &raw, ip, &e);
            refused(api, &e)
        }
    }
}

/// An error before the call ran: it never reached the cache.
fn refused(api: Api, e: &GatewayError) -> Response {
    let mut r = e.render(api);
    r.headers_mut()
        .insert("x-growth-cache", HeaderValue::from_static("BYPASS"));
    r
}

fn split(state: &AppState, gw: &Gateway, req: Request) -> (HeaderMap, Option<String>, Body) {
    let (parts, body) = req.into_parts();
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|_| client_ip(&parts, state.config.server.trust_proxy))
        .and_then(|ip| gw.client_ip(ip));
    (parts.headers, ip, body)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(GatewayError::TooLarge(BODY_LIMIT));
    }
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| GatewayError::TooLarge(BODY_LIMIT))
}

/// `GET /v1/models`, in the shape of whichever SDK asks (Anthropic's sends
/// `anthropic-version`).
#[utoipa::path(get, path = "/v1/models", tag = "AI gateway",
    summary = "Models the gateway routes (OpenAI's list shape; Anthropic's when anthropic-version is sent)",
    security(("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses((status = 200, description = "Model list", body = Object),
        (status = 401, description = "Missing or wrong gateway key, in the provider's error shape", body = OpenAiError)))]
pub async fn models(Extension(gw): Extension<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let api = if anthropic {
        Api::Anthropic
    } else {
        Api::OpenAi
    };
    if gw.keys.check(&headers).is_none() {
        return GatewayError::Unauthorized.render(api);
    }
    let names = gw.models().await;
    let body = if anthropic {
        let data: Vec<_> = names
            .iter()
            .map(|(m, _)| json!({ "type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z" }))
            .collect();
        json!({
            "data": data, "has_more": false,
            "first_id": names.first().map(|n| &n.0), "last_id": names.last().map(|n| &n.0),
        })
    } else {
        let data: Vec<_> = names
            .iter()
            .map(|(m, p)| json!({ "id": m, "object": "model", "created": 0, "owned_by": &**p }))
            .collect();
        json!({ "object": "list", "data": data })
    };
    Json(body).into_response()
}

/// `POST /api/ai/generate`: the guide's `generateAIResponse(model, prompt, options)`.
#[utoipa::path(post, path = "/api/ai/generate", tag = "AI gateway",
    summary = "The guide's generateAIResponse(model, prompt, {parameters, userId, cached})",
    request_body(content = GenerateRequest, content_type = "application/json"),
    security(("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses((status = 200, description = "{request_id, model, provider, content, cached, demo, usage, response}", body = Object),
        GenerateErrors))]
pub async fn generate(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, ip, body) = split(&state, &gw, req);
    if gw.keys.check(&headers).is_none() {
        return Err(ApiError::GatewayKey);
    }
    let raw = match read_body(&headers, body).await {
        Ok(raw) => raw,
        Err(e) => {
            gw.record_refused(generate::ENDPOINT, b"", ip, &e);
            return Err(generate::api_error(e));
        }
    };
    generate::run(&gw, &headers, &raw, ip).await
}
