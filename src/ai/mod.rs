//! AI calls: per-call metrics (model, tokens, latency, cache hit, errors) and their reads.

mod api;
mod ingest;
pub mod query;

use axum::routing::post;
use axum::Router;

pub use ingest::AiMetricIn;

use crate::http::ingest::handler;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/analytics/ai-performance",
        post(handler::<AiMetricIn>).get(api::get),
    )
}
