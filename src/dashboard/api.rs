//! HTTP handlers: log in (token for cookie), session status, log out, overview.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::query;
use crate::error::ApiError;
use crate::http::auth::token_matches;
use crate::http::openapi::{errors, ReadErrors, CSRF, UNAUTHORIZED};
use crate::http::session;
use crate::http::{Admin, CachedRead, Window, WindowQuery};
use crate::state::AppState;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(login, session, logout, logout_everywhere, overview))]
pub(super) struct Doc;

/// The body of `POST /api/session`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The admin token.
    token: String,
}

/// `{"ok": true}`.
#[derive(Serialize, ToSchema)]
pub struct OkAnswer {
    ok: bool,
}

/// What `GET /api/session` tells the dashboard.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    authenticated: bool,
    ingest_key_required: bool,
    version: String,
}

struct LoginErrors;

impl utoipa::IntoResponses for LoginErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "The body is not {\"token\": \"...\"}"),
            (401, "That is not the admin token"),
        ])
    }
}

struct LogoutErrors;

impl utoipa::IntoResponses for LogoutErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        errors(&[UNAUTHORIZED, CSRF])
    }
}

struct SessionErrors;

impl utoipa::IntoResponses for SessionErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        errors(&[UNAUTHORIZED])
    }
}

/// `POST /api/session`: the admin token for a session cookie.
#[utoipa::path(post, path = "/api/session", tag = "Dashboard",
    summary = "Log in: exchange the admin token for a session cookie",
    request_body(content = Login, content_type = "application/json"),
    security(()),
    responses((status = 200, description = "Logged in; Set-Cookie gs_session (HttpOnly, SameSite=Strict)", body = OkAnswer),
        LoginErrors))]
pub async fn login(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Malformed(format!("expected {{\"token\": \"...\"}}: {e}")))?;
    if !token_matches(&state, &login.token) {
        return Err(ApiError::WrongToken);
    }
    let id = state.sessions.create().await?;
    let mut resp = Json(OkAnswer { ok: true }).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&id));
    Ok(resp)
}

/// `GET /api/session`: whether this session (or bearer token) is logged in.
#[utoipa::path(get, path = "/api/session", tag = "Dashboard",
    summary = "Whether this session is logged in",
    security(("admin" = [])),
    responses((status = 200, description = "Logged in", body = SessionInfo), SessionErrors))]
pub async fn session(State(state): State<AppState>, _: Admin) -> Json<SessionInfo> {
    Json(SessionInfo {
        authenticated: true,
        ingest_key_required: state.config.ingest.key.is_some(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// `DELETE /api/session`: log out.
#[utoipa::path(delete, path = "/api/session", tag = "Dashboard",
    summary = "Log out (with a cookie, needs X-Requested-With: growth-stack)",
    security(("admin" = [])),
    responses((status = 200, description = "Logged out; the cookie is cleared", body = OkAnswer), LogoutErrors))]
pub async fn logout(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session::from_headers(&headers) {
        state.sessions.remove(&id).await?;
    }
    let mut resp = Json(OkAnswer { ok: true }).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(resp)
}

/// How many sessions `DELETE /api/sessions` ended.
#[derive(Serialize, ToSchema)]
pub struct LoggedOut {
    ended: u64,
}

/// `DELETE /api/sessions`: log out everywhere.
#[utoipa::path(delete, path = "/api/sessions", tag = "Dashboard",
    summary = "Log out every dashboard session (with a cookie, needs X-Requested-With: growth-stack)",
    security(("admin" = [])),
    responses((status = 200, description = "Every session ended; this one's cookie is cleared", body = LoggedOut), LogoutErrors))]
pub async fn logout_everywhere(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Response, ApiError> {
    let ended = state.sessions.remove_all().await?;
    let mut resp = Json(LoggedOut { ended }).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    Ok(resp)
}

/// `GET /api/overview`: the front page's numbers.
#[utoipa::path(get, path = "/api/overview", tag = "Dashboard",
    summary = "Front-page numbers of every stream in one call: events, users, conversions, web-vitals p75, \
        AI calls, slow queries, the scaling recommendation, and an events series",
    description = "`estimated` lists the figures that are estimates: HyperLogLog (`events.users`, `events.sessions`, \
        `series.users` with day buckets) and, for windows over two days, log-bucket percentiles within 2% \
        (`ai.p75_duration`, `database.p95_duration`, `database.slow`, `database.slow_rate`), and `vitals` (every figure \
        of it) when the window holds more than `performance.exact_max_samples` samples and is read from the web-vitals \
        roll-up, as the Performance page reads it; every other figure is exact.",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The overview", body = Object), ReadErrors))]
pub async fn overview(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(query::overview(&state, window)).await
}
