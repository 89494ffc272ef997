//! The dashboard's own API: login sessions and the overview that sums up every stream.

mod api;
mod query;

use axum::routing::{delete, get};
use axum::Router;

use crate::state::AppState;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: the login session and the overview. The dashboard owns no data and
/// runs no task: it composes the capabilities' headlines.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/session",
            get(api::session).post(api::login).delete(api::logout),
        )
        .route("/api/sessions", delete(api::logout_everywhere))
        .route("/api/overview", get(api::overview))
}
