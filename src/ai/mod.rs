//! AI calls: the gateway apps point their OpenAI / Anthropic SDKs at (cache, limits,
//! providers, per-call metrics), metrics apps report themselves, and their reads.

mod api;
mod cache;
mod canned;
mod clickhouse;
mod docs;
mod gateway;
mod generate;
mod ingest;
mod keys;
mod limits;
mod price;
mod providers;
mod query;
mod reads;
mod recorder;
mod sse;
mod upstream;
mod wire;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

pub use gateway::{Gateway, StartError};
pub use ingest::AiMetricIn;
pub use price::list_cost;
pub use query::Headline;

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// The AI routes; the gateway endpoints share the one running `Gateway` from `start`.
pub fn routes(gateway: Arc<Gateway>) -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/ai-performance",
            post(handler::<AiMetricIn>).get(api::get),
        )
        .route("/v1/chat/completions", post(api::chat_completions))
        .route("/v1/messages", post(api::messages))
        .route("/v1/models", get(api::models))
        .route("/api/ai/generate", post(api::generate))
        .layer(Extension(gateway))
}

/// Starts the gateway: keys (made on the first start), providers, cache, limits, and its
/// background tasks (the metric recorder, the limiter cleanup, the calls' roll-up). `Gateway::shutdown`
/// writes what the recorder still holds.
pub fn start(state: &AppState) -> Result<Arc<Gateway>, StartError> {
    let gateway = Gateway::start(&state.config, state.store.clone(), state.privacy.clone())?;
    query::TIMINGS.spawn(&state.store);
    // The cache's size for `/metrics`, read at scrape time (weakly: a stopped gateway
    // reads as empty rather than kept alive by the probe).
    let gw = Arc::downgrade(&gateway);
    crate::telemetry::probe(
        "growth_ai_cache_entries",
        "Answers held in the AI gateway cache.",
        move || gw.upgrade().map_or(0.0, |g| g.cache_stats().0 as f64),
    );
    let gw = Arc::downgrade(&gateway);
    crate::telemetry::probe(
        "growth_ai_cache_bytes",
        "Bytes the AI gateway cache holds.",
        move || gw.upgrade().map_or(0.0, |g| g.cache_stats().1 as f64),
    );
    Ok(gateway)
}

/// Folds new calls into the roll-up now (the demo, after writing); returns the buckets written.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    query::TIMINGS.catch_up(store).await
}

/// What the dashboard's overview shows of AI calls over `window`.
pub async fn headline(state: &AppState, window: Window) -> Result<Headline, StoreError> {
    reads::headline(&state.store, window).await
}
