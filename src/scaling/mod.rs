//! Scalability: samples of this host (sysinfo) and of the user's app instances, the
//! Kubernetes HPA algorithm over them, a seasonal forecast of the load ahead, manifests
//! ready to apply, and the Prometheus exposition of the whole server at `/metrics`.

mod api;
mod clickhouse;
mod forecast;
mod hpa;
mod ingest;
mod manifests;
mod metrics;
mod predict;
mod query;
mod reads;
mod recommend;
mod sampler;

use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

pub use ingest::SampleIn;
pub use metrics::cpu_seconds;

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::StoreError;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: sample ingest and reads, the recommendation, its history, the
/// forecast, the manifests, and `/metrics`.
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

/// Its background tasks: the host sampler (unless `scalability.sample_interval` is 0) and
/// the task that records a recommendation every interval (the stabilisation window and
/// the history read them back; on ClickHouse one node a period records it). `addr` is
/// where this node listens: on ClickHouse its port tells two nodes of one host apart.
pub fn start(state: &AppState, addr: SocketAddr) {
    let name = match state.store.clickhouse() {
        Some(_) => format!("{}:{}", sampler::host_name(), addr.port()),
        None => sampler::host_name(),
    };
    let _ = NODE.set(name);
    let cfg = &state.config.scalability;
    let every = Duration::from_secs(match cfg.sample_interval {
        0 => 15,
        s => s,
    });
    if cfg.sample_interval > 0 {
        sampler::spawn(
            state.store.clone(),
            state.config.server.data_dir.clone(),
            every,
        );
    }
    if cfg.enabled {
        let config = state.config.clone();
        let last = Arc::new(AtomicI64::new(i64::MIN));
        state.store.every(
            every,
            "recording the scaling recommendation",
            move |store| {
                let (config, last) = (config.clone(), last.clone());
                async move {
                    recommend::record_once(&store, &config.scalability, every, &last).await
                }
            },
        );
    }
}

/// This node's name in its host samples' `instance`, set by `start`.
static NODE: OnceLock<String> = OnceLock::new();

/// The host name on DuckDB (one node, its own file), `host:port` on ClickHouse (every
/// node's samples in one table).
fn node_instance() -> String {
    NODE.get().cloned().unwrap_or_else(sampler::host_name)
}

/// What the overview shows: the recommendation now (it is about the fleet running now, so
/// the overview's window does not change it), and whether it differs from that count.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub state: recommend::State,
    pub current_instances: u32,
    pub desired_instances: Option<u32>,
    pub changes: bool,
    pub action: Option<hpa::Action>,
    pub urgency: Option<hpa::Urgency>,
    pub reason: String,
}

/// What the dashboard's overview shows of scaling.
pub async fn headline(state: &AppState, _window: Window) -> Result<Headline, StoreError> {
    let rec = recommend::current(&state.store, &state.config.scalability).await?;
    Ok(Headline {
        state: rec.state,
        current_instances: rec.current_instances,
        desired_instances: rec.desired_instances,
        changes: rec.changes(),
        action: rec.action,
        urgency: rec.urgency,
        reason: rec.reason,
    })
}

/// The name this host's samples carry in `instance` (the demo writes its samples so).
pub fn host_instance() -> String {
    sampler::host_name()
}
