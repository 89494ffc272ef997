//! HTTP handlers for scaling: samples, recommendation, history, forecast, manifests and
//! the Prometheus exposition, and the OpenAPI operations of this capability (sample
//! ingest is `http::ingest::handler::<SampleIn>`).

use std::str::FromStr;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::ingest::SampleIn;
use super::manifests::{self, is_dns_label};
use super::metrics::{self, Scrape};
use super::{predict, reads, recommend, sampler};
use crate::error::ApiError;
use crate::http::ingest::Accepted;
use crate::http::openapi::{errors, IngestErrors, OneOrMany, ReadErrors, UNAUTHORIZED};
use crate::http::params::Int;
use crate::http::{Admin, CachedRead, Params, Window, WindowQuery};
use crate::state::AppState;

/// The body of `POST /api/analytics/system`.
type SamplesBody = OneOrMany<SampleIn>;
/// Hours the forecast looks ahead.
type Hours = Int<1, 168>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(post, system, recommendation, history, forecast, manifests, metrics))]
pub(super) struct Doc;

/// Carries the OpenAPI description of `POST /api/analytics/system`.
#[utoipa::path(post, path = "/api/analytics/system", tag = "Scaling",
    summary = "Record one load sample of an app instance, or a batch of them",
    description = "Each instance of the app reports its CPU and memory (percent of its own limit) every \
        15-60 s; an instance counts as running while its newest sample is younger than \
        scalability.stale_after. A sample without any metric is a heartbeat: it counts the instance, \
        and the recommendation treats its metrics as the Kubernetes HPA treats a missing one. \
        Answers 200 only after the rows are committed; a batch with one invalid item writes nothing.",
    request_body(content = SamplesBody, content_type = "application/json"),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post() {}

/// `GET /api/analytics/system`.
#[utoipa::path(get, path = "/api/analytics/system", tag = "Scaling",
    summary = "Load samples of this host and of the app instances",
    description = "A series of app and host CPU, memory, requests and p95 latency per bucket; every \
        instance seen in the window with its latest values and whether it is still `fresh`; the newest samples.",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The samples", body = Object), ReadErrors))]
pub async fn system(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    let stale = state.config.scalability.stale_after;
    read.json(reads::system(&state.store, window, stale)).await
}

/// `GET /api/scaling/recommendation`.
#[utoipa::path(get, path = "/api/scaling/recommendation", tag = "Scaling",
    summary = "How many instances to run, by the Kubernetes HPA algorithm over the fresh samples",
    description = "`current_instances` (instances that reported within scalability.stale_after), \
        `desired_instances`, the `metric` that drove it, its `inputs`, the stabilisation window, \
        `urgency` (the guide's up/down thresholds) and a `reason` in words. `state` is `ok`, \
        `not_enough_data` (no fresh sample: nothing is guessed) or `disabled`.",
    security(("admin" = [])),
    responses((status = 200, description = "The recommendation", body = Object), ReadErrors))]
pub async fn recommendation(
    State(state): State<AppState>,
    read: CachedRead,
) -> Result<Response, ApiError> {
    read.json(recommend::current(&state.store, &state.config.scalability))
        .await
}

/// `GET /api/scaling/history`.
#[utoipa::path(get, path = "/api/scaling/history", tag = "Scaling",
    summary = "Recommendations recorded in the window (one per sample interval), newest first",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The history", body = Object), ReadErrors))]
pub async fn history(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::history(&state.store, window)).await
}

/// The query string of `GET /api/scaling/forecast`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// Hours ahead, 1 to 168; default scalability.forecast_hours.
    #[param(inline)]
    hours: Option<Hours>,
}

/// `GET /api/scaling/forecast`.
#[utoipa::path(get, path = "/api/scaling/forecast", tag = "Scaling",
    summary = "Forecast of the fleet's hourly load with a 95% band, the instances a predicted peak needs, \
        and this host's disk and memory capacity",
    description = "Additive Holt-Winters with a daily season over up to 28 days of hourly load; \
        `state` is `not_enough_data` with fewer than 48 hours of samples.",
    params(ForecastQuery), security(("admin" = [])),
    responses((status = 200, description = "The forecast", body = Object), ReadErrors))]
pub async fn forecast(
    State(state): State<AppState>,
    read: CachedRead,
    Params(q): Params<ForecastQuery>,
) -> Result<Response, ApiError> {
    let hours = q.hours.map(|h| h.0);
    read.json(predict::forecast(
        &state.store,
        &state.config.scalability,
        hours,
    ))
    .await
}

/// A Kubernetes object name (an RFC 1123 label): what the manifests' `name` and
/// `namespace` must be, so the YAML needs no quoting and input cannot break out of it.
#[derive(Debug, Clone)]
pub struct K8sName(String);

impl FromStr for K8sName {
    type Err = String;
    fn from_str(s: &str) -> Result<K8sName, String> {
        if is_dns_label(s) {
            Ok(K8sName(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a Kubernetes name: 1 to 63 lowercase letters, digits or '-', \
                 starting and ending with a letter or digit"
            ))
        }
    }
}
crate::str_param!(K8sName);

impl PartialSchema for K8sName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(manifests::DNS_LABEL_PATTERN))
            .description(Some("A Kubernetes object name (RFC 1123 label)"))
            .into()
    }
}
impl ToSchema for K8sName {}

/// The query string of `GET /api/scaling/manifests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManifestQuery {
    /// The Deployment (and compose service) to scale; default `app`.
    #[param(inline)]
    name: Option<K8sName>,
    /// Its Kubernetes namespace; default `default`.
    #[param(inline)]
    namespace: Option<K8sName>,
}

/// `GET /api/scaling/manifests`.
#[utoipa::path(get, path = "/api/scaling/manifests", tag = "Scaling",
    summary = "The settings and the recommendation, ready to apply: a Kubernetes autoscaling/v2 \
        HorizontalPodAutoscaler, a KEDA ScaledObject, and docker compose / kubectl lines",
    params(ManifestQuery), security(("admin" = [])),
    responses((status = 200, description = "The manifests", body = manifests::Manifests), ReadErrors))]
pub async fn manifests(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<ManifestQuery>,
) -> Result<Json<manifests::Manifests>, ApiError> {
    let name = q.name.map_or_else(|| "app".to_string(), |n| n.0);
    let namespace = q.namespace.map_or_else(|| "default".to_string(), |n| n.0);
    let cfg = &state.config.scalability;
    let rec = recommend::current(&state.store, cfg).await?;
    let replicas = rec.desired_instances.unwrap_or(cfg.min_instances);
    Ok(Json(manifests::render(cfg, &name, &namespace, replicas)))
}

struct MetricsErrors;

impl utoipa::IntoResponses for MetricsErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        errors(&[UNAUTHORIZED])
    }
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "Ops",
    summary = "Prometheus text exposition (format 0.0.4)",
    description = "The standard process_* metrics, HTTP requests and latency per route, ingest rows and \
        group-commit sizes, AI gateway calls, cache hits and tokens, cache sizes, the sampled host gauges \
        and the scaling recommendation. Prometheus sends the admin token as a bearer token \
        (`authorization: { credentials_file: ... }`).",
    security(("admin" = [])),
    responses((status = 200, description = "The exposition", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        MetricsErrors))]
pub async fn metrics(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let (rows_written, commits) = state.store.stats();
    let mut scrape = Scrape {
        rows_written,
        commits,
        queued_rows: state.store.queued_rows() as u64,
        read_cache_entries: state.read_cache.len() as u64,
        host: sampler::latest(),
        ..Default::default()
    };
    match recommend::current(&state.store, &state.config.scalability).await {
        Ok(rec) => scrape.recommendation(&rec),
        Err(e) => tracing::warn!(error = %e, "no recommendation for /metrics"),
    }
    let text = metrics::render(scrape).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(resp)
}
