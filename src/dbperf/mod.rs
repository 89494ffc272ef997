//! Database query monitoring: apps report query timings; reads show slow and frequent queries.

mod api;
mod ingest;
mod query;

use axum::routing::post;
use axum::Router;

pub use ingest::QueryTimingIn;
pub use query::Headline;

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::StoreError;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: query-timing ingest and reads.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/analytics/database-performance",
        post(handler::<QueryTimingIn>).get(api::get),
    )
}

/// Its background tasks: none yet (the face keeps the shape every capability shares).
pub fn start(_state: &AppState) {}

/// What the dashboard's overview shows of query timings over `window`.
pub async fn headline(state: &AppState, window: Window) -> Result<Headline, StoreError> {
    let slow = state.config.database.slow_query_threshold;
    query::headline(&state.store, window, slow).await
}
