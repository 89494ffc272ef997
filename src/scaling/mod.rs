//! Scalability: samples of this host (sysinfo) and of the user's app instances, the
//! Kubernetes HPA algorithm over them, a seasonal forecast of the load ahead, manifests
//! ready to apply, and the Prometheus exposition of the whole server at `/metrics`.

mod api;
pub mod demo;
mod forecast;
mod hpa;
mod ingest;
mod manifests;
mod metrics;
mod predict;
mod query;
mod recommend;
mod sampler;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

pub use ingest::SampleIn;

use crate::config::ScalabilityConfig;
use crate::http::ingest::handler;
use crate::state::AppState;
use crate::store::{Store, StoreError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/system",
            post(handler::<SampleIn>).get(api::system),
        )
        .route("/api/scaling/recommendation", get(api::recommendation))
        .route("/api/scaling/forecast", get(api::forecast))
        .route("/api/scaling/history", get(api::history))
        .route("/api/scaling/manifests", get(api::manifests))
        .route("/metrics", get(api::metrics))
}

/// Starts the host sampler (unless `scalability.sample_interval` is 0) and the task that
/// records a recommendation every interval (the stabilisation window reads them back).
pub fn start(state: &AppState) {
    let cfg = &state.config.scalability;
    let every = Duration::from_secs(if cfg.sample_interval > 0 {
        cfg.sample_interval
    } else {
        15
    });
    if cfg.sample_interval > 0 {
        sampler::spawn(
            state.store.clone(),
            state.config.server.data_dir.clone(),
            every,
        );
    }
    if cfg.auto_scaling.enabled {
        let config = state.config.clone();
        state.store.every(
            every,
            "recording the scaling recommendation",
            move |store| {
                let config = config.clone();
                async move { recommend::record(&store, &config.scalability).await }
            },
        );
    }
}

/// What the overview shows: the recommendation in one line, and whether it differs
/// from the count running now.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub state: recommend::State,
    pub current_instances: u32,
    pub desired_instances: Option<u32>,
    pub changes: bool,
    pub urgency: Option<hpa::Urgency>,
    pub reason: String,
}

pub async fn headline(store: &Store, cfg: &ScalabilityConfig) -> Result<Headline, StoreError> {
    let rec = recommend::current(store, cfg).await?;
    Ok(Headline {
        state: rec.state,
        current_instances: rec.current_instances,
        desired_instances: rec.desired_instances,
        changes: rec.changes(),
        urgency: rec.urgency,
        reason: rec.reason,
    })
}

/// The host's name as samples record it (for tools and tests).
pub fn host_instance() -> String {
    sampler::host_name()
}
