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

use crate::http::ingest::handler;
use crate::state::AppState;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

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
        .route("/api/analytics/users/{id}", get(api::user))
        .route("/api/analytics/funnels", post(api::funnel_adhoc))
        .route("/api/analytics/funnels/{name}", get(api::funnel_named))
        .route("/api/analytics/retention", get(api::retention))
        .route("/api/analytics/features", get(api::features))
        .route("/api/analytics/growth", get(api::overview))
}
