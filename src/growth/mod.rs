//! Growth analytics: custom events and conversions, user profiles, funnels, retention
//! cohorts, feature adoption, active users and where people come from.

// The analysis engines (a spec in; its SQL and its result out) are public: the property
// tests and `bench --growth` drive them directly, SQL included.
pub mod active;
pub mod adoption;
pub mod dimensions;
pub mod funnel;
pub mod overview;
pub mod retention;
pub mod rollup;
pub mod rollup_days;
pub mod sketch;
pub mod time;

mod api;
mod clickhouse;
mod enrich;
mod ingest;
mod profile;
mod props;
mod query;
mod reads;

use axum::routing::{get, post};
use axum::Router;

pub use enrich::{feature, host, visitor_id};
pub use ingest::{ConversionIn, EventIn};
pub use query::{Headline, HeadlineTotals};

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: event and conversion ingest, and every growth read.
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

/// Its background tasks: folds new events into `user_profiles` every few seconds, and
/// their active days into the DAU/WAU/MAU roll-up.
pub fn start(state: &AppState) {
    profile::spawn_fold(state.store.clone());
    rollup::spawn(state.store.clone());
    rollup_days::spawn(state.store.clone());
}

/// Does now what the background tasks would do next (the demo, after writing); returns
/// how many events it folded into profiles.
pub async fn catch_up(store: &Store) -> Result<u64, StoreError> {
    rollup::catch_up(store).await?;
    rollup_days::catch_up(store).await?;
    profile::fold(store).await
}

/// What the dashboard's overview shows of growth over `window`.
pub async fn headline(state: &AppState, window: Window) -> Result<Headline, StoreError> {
    reads::headline(&state.store, window).await
}
