//! HTTP handlers for scaling: samples, recommendation, forecast, history, manifests and
//! the Prometheus exposition. Each extracts, calls a plain function, returns.

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::manifests::{self, is_dns_label};
use super::metrics::{self, Scrape};
use super::{predict, query, recommend, sampler};
use crate::error::ApiError;
use crate::http::{Admin, Window};
use crate::state::AppState;

/// The query string as the endpoint's own parameter type.
fn params<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::BadParam {
            param: "query",
            message: e.body_text(),
        })
}

/// `GET /api/analytics/system`: `range` (or `from`/`to`), `limit`, `offset`.
pub async fn system(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let stale = state.config.scalability.stale_after;
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::system(&state.store, window, stale).await?)
        })
        .await
}

/// `GET /api/scaling/recommendation` (no parameters).
pub async fn recommendation(
    State(state): State<AppState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(recommend::current(&state.store, &state.config.scalability).await?)
        })
        .await
}

/// `GET /api/scaling/history`: `range` (or `from`/`to`), `limit`, `offset`.
pub async fn history(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::history_report(&state.store, window).await?)
        })
        .await
}

#[derive(Debug, Deserialize)]
pub struct ForecastParams {
    /// Hours ahead, 1-168; `scalability.auto_scaling.forecast_hours` when absent.
    hours: Option<u32>,
}

/// `GET /api/scaling/forecast?hours=`.
pub async fn forecast(
    State(state): State<AppState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let p: ForecastParams = params(&uri)?;
    if p.hours.is_some_and(|h| !(1..=168).contains(&h)) {
        return Err(ApiError::BadParam {
            param: "hours",
            message: "must be between 1 and 168".into(),
        });
    }
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(predict::forecast(&state.store, &state.config.scalability, p.hours).await?)
        })
        .await
}

#[derive(Debug, Deserialize)]
pub struct ManifestParams {
    /// The Deployment / compose service to scale (default `app`).
    name: Option<String>,
    /// Kubernetes namespace (default `default`).
    namespace: Option<String>,
}

/// `GET /api/scaling/manifests?name=&namespace=`.
pub async fn manifests(
    State(state): State<AppState>,
    _: Admin,
    OriginalUri(uri): OriginalUri,
) -> Result<axum::Json<manifests::Manifests>, ApiError> {
    let p: ManifestParams = params(&uri)?;
    let name = p
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".into());
    let namespace = p
        .namespace
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    for (param, v) in [("name", &name), ("namespace", &namespace)] {
        if !is_dns_label(v) {
            return Err(ApiError::BadParam {
                param,
                message: "must be a Kubernetes name: lowercase letters, digits and '-', at most 63"
                    .into(),
            });
        }
    }
    let cfg = &state.config.scalability;
    let rec = recommend::current(&state.store, cfg).await?;
    let replicas = rec
        .desired_instances
        .unwrap_or(cfg.auto_scaling.min_instances);
    Ok(axum::Json(manifests::render(
        &cfg.auto_scaling,
        &name,
        &namespace,
        replicas,
    )))
}

/// `GET /metrics`: Prometheus text format; needs the admin token (Prometheus sends it with
/// `authorization: { credentials: ... }` or `bearer_token_file`).
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
