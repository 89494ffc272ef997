//! HTTP handlers: the gateway endpoints (`/v1/...`, `/api/ai/generate`) and AI metric reads.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde_json::json;

use super::gateway::{Gateway, BODY_LIMIT};
use super::wire::{Api, GatewayError};
use super::{generate, query};
use crate::error::ApiError;
use crate::http::auth::client_ip;
use crate::http::{Admin, Window};
use crate::state::AppState;

pub async fn get(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::summary(&state.store, window).await?)
        })
        .await
}

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(gw): Extension<Arc<Gateway>>,
    req: Request,
) -> Response {
    proxy(&state, &gw, Api::OpenAi, req).await
}

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
