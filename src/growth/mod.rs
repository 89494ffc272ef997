//! Growth analytics: custom events with properties, and conversion steps of funnels.

mod api;
mod ingest;
pub mod query;

use axum::routing::post;
use axum::Router;

pub use ingest::{ConversionIn, EventIn};

use crate::http::ingest::handler;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/events",
            post(handler::<EventIn>).get(api::events),
        )
        .route(
            "/api/analytics/conversions",
            post(handler::<ConversionIn>).get(api::conversions),
        )
}
