//! AI calls: the gateway apps point their OpenAI / Anthropic SDKs at (cache, limits,
//! providers, per-call metrics), metrics apps report themselves, and their reads.

mod api;
mod cache;
mod canned;
mod docs;
mod gateway;
mod generate;
mod ingest;
mod keys;
mod limits;
pub mod price;
mod providers;
pub mod query;
mod recorder;
mod sse;
mod upstream;
mod wire;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

pub use gateway::{Gateway, StartError};
pub use ingest::AiMetricIn;
pub use keys::Origin as KeyOrigin;

use crate::http::ingest::handler;
use crate::state::AppState;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

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
