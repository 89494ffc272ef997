//! Database query monitoring: apps report query timings; reads show slow and frequent queries.

mod api;
mod ingest;
pub mod query;

use axum::routing::post;
use axum::Router;

pub use ingest::QueryTimingIn;

use crate::http::ingest::handler;
use crate::state::AppState;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/analytics/database-performance",
        post(handler::<QueryTimingIn>).get(api::get),
    )
}
