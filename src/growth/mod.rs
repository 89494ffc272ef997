//! Growth analytics: custom events and conversions, user profiles, funnels, retention
//! cohorts, feature adoption, active users and where people come from.

pub mod active;
pub mod adoption;
mod api;
pub mod enrich;
pub mod funnel;
mod ingest;
pub mod overview;
pub mod profile;
pub mod query;
pub mod retention;
pub mod time;

use axum::routing::{get, post};
use axum::Router;

pub use ingest::{ConversionIn, EventIn};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/events",
            post(ingest::events).get(api::events),
        )
        .route(
            "/api/analytics/conversions",
            post(ingest::conversions).get(api::conversions),
        )
        .route("/api/analytics/users/{id}", get(api::user))
        .route("/api/analytics/funnels", post(api::funnel_adhoc))
        .route("/api/analytics/funnels/{name}", get(api::funnel_named))
        .route("/api/analytics/retention", get(api::retention))
        .route("/api/analytics/features", get(api::features))
        .route("/api/analytics/growth", get(api::overview))
}
