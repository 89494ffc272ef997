//! HTTP handlers: log in (token for cookie), session status, log out, overview.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::query;
use crate::error::ApiError;
use crate::http::auth::token_matches;
use crate::http::session;
use crate::http::{Admin, Window};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Malformed(format!("expected {{\"token\": \"...\"}}: {e}")))?;
    if !token_matches(&state, &login.token) {
        return Err(ApiError::WrongToken);
    }
    let id = state.sessions.create();
    let mut resp = Json(json!({ "ok": true })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&id));
    Ok(resp)
}

pub async fn session(State(state): State<AppState>, _: Admin) -> Json<serde_json::Value> {
    Json(json!({
        "authenticated": true,
        "ingest_key_required": state.config.ingest.key.is_some(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn logout(State(state): State<AppState>, _: Admin, headers: HeaderMap) -> Response {
    if let Some(id) = session::from_headers(&headers) {
        state.sessions.remove(&id);
    }
    let mut resp = Json(json!({ "ok": true })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    resp
}

pub async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::overview(&state, window).await?)
        })
        .await
}
