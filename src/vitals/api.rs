//! HTTP handlers for performance: ingest of both report shapes, and the reads.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Json;
use chrono::Utc;

use super::ingest::{rows, Origin};
use super::query::{self, Filter, Stat};
use super::{Device, Metric};
use crate::error::ApiError;
use crate::http::body;
use crate::http::ingest::Ctx;
use crate::http::{Admin, Sender, Window};
use crate::state::AppState;
use crate::store::Batch;

/// `POST /api/analytics/performance`: page-view samples and web-vitals objects, mixed freely.
pub async fn post(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VitalsAccepted>, ApiError> {
    let cfg = &state.config.ingest;
    let bytes = body::read(&headers, body, cfg.body_limit).await?;
    let (items, is_batch) = body::parse_items::<serde_json::Value>(&bytes, cfg.max_batch)?;
    let ctx = Ctx::new(&sender, &state.privacy, Utc::now());
    let origin = Origin {
        referer: same_origin_referer(&headers),
        recent: &state.recent_metrics,
    };
    let (rows, ignored) = rows(items, is_batch, &ctx, &origin)?;
    let accepted = rows.len();
    if accepted > 0 {
        state.store.append(Batch::Performance(rows)).await?;
    }
    Ok(Json(VitalsAccepted { accepted, ignored }))
}

/// The ingest answer, plus the Next.js custom timings that were skipped.
#[derive(serde::Serialize)]
pub struct VitalsAccepted {
    pub accepted: usize,
    pub ignored: usize,
}

/// The `Referer` when the report comes from a page on this server's host: browsers send
/// only the origin to other sites, which would file every cross-origin report under `/`.
fn same_origin_referer(headers: &HeaderMap) -> Option<&str> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let after_scheme = referer.split_once("://")?.1;
    let referer_host = after_scheme.split(['/', '?', '#']).next()?;
    referer_host.eq_ignore_ascii_case(host).then_some(referer)
}

type Params = Query<HashMap<String, String>>;

fn exact_max(state: &AppState) -> u64 {
    state.config.performance.exact_max_samples
}

fn filter(p: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let device = match p.get("device").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(d) => Some(Device::parse(d).ok_or_else(|| ApiError::BadParam {
            param: "device",
            message: format!("{d:?} is not mobile, tablet, desktop or unknown"),
        })?),
    };
    let route = p.get("route").filter(|r| !r.is_empty()).cloned();
    Ok(Filter { route, device })
}

fn stat(p: &HashMap<String, String>) -> Result<Stat, ApiError> {
    match p.get("stat").map(String::as_str) {
        None | Some("") => Ok(Stat::P75),
        Some(s) => Stat::parse(s).ok_or_else(|| ApiError::BadParam {
            param: "stat",
            message: format!("{s:?} is not p50, p75, p90, p95 or p99"),
        }),
    }
}

/// `GET /api/analytics/performance`: totals, every metric at `stat`, score, trend, rows.
pub async fn get(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (f, s) = (filter(&p)?, stat(&p)?);
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::summary(&state.store, window, f, s, exact_max(&state)).await?)
        })
        .await
}

/// `GET /api/analytics/performance/routes`: route × device, ranked by opportunity.
pub async fn routes(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (f, s) = (filter(&p)?, stat(&p)?);
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::groups(&state.store, window, f, s, exact_max(&state)).await?)
        })
        .await
}

/// `GET /api/analytics/performance/histogram?metric=lcp`.
pub async fn histogram(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let f = filter(&p)?;
    let name = p.get("metric").map(String::as_str).unwrap_or("lcp");
    let metric = Metric::from_name(name).ok_or_else(|| ApiError::BadParam {
        param: "metric",
        message: format!("{name:?} is not lcp, inp, cls, fcp, ttfb or fid"),
    })?;
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::histogram(&state.store, window, f, metric, exact_max(&state)).await?)
        })
        .await
}
