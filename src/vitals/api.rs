//! HTTP handlers for performance: the reads, each with its typed query string, and the
//! OpenAPI operations of this capability (ingest is `http::ingest::handler`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::ingest::PerformanceItem;
use super::query::{self, Filter, Stat};
use super::{Device, Metric};
use crate::error::ApiError;
use crate::http::ingest::Accepted;
use crate::http::openapi::{IngestErrors, OneOrMany, ReadErrors};
use crate::http::params::{enum_schema, Params};
use crate::http::{CachedRead, Window, WindowQuery};
use crate::state::AppState;

/// The body of `POST /api/analytics/performance`.
type PerformanceBody = OneOrMany<PerformanceItem>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(post, get, routes, histogram))]
pub(super) struct Doc;

/// `POST /api/analytics/performance` is `http::ingest::handler::<PerformanceItem>`; this
/// function only carries its OpenAPI description.
#[utoipa::path(post, path = "/api/analytics/performance", tag = "Performance",
    summary = "Record page-view samples and web-vitals objects, mixed freely",
    description = "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing. \
        `text/plain` bodies (navigator.sendBeacon) are parsed as JSON too.",
    request_body(content = PerformanceBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed; `ignored` counts custom timings", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post() {}

/// `?stat=`: which percentile a read reports; p75 is what Core Web Vitals are judged by.
#[derive(Debug, Clone, Copy)]
pub struct StatParam(Stat);

impl std::str::FromStr for StatParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stat::parse(s)
            .map(StatParam)
            .ok_or_else(|| format!("{s:?} is not p50, p75, p90, p95 or p99"))
    }
}
crate::str_param!(StatParam);

impl PartialSchema for StatParam {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            &["p50", "p75", "p90", "p95", "p99"],
            "Percentile to report (linear interpolation); default p75",
        )
    }
}
impl ToSchema for StatParam {}

/// `?device=`: one device class, or `all` (the default).
#[derive(Debug, Clone, Copy)]
pub struct DeviceParam(Option<Device>);

impl std::str::FromStr for DeviceParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(DeviceParam(None));
        }
        Device::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .map(|d| DeviceParam(Some(d)))
            .ok_or_else(|| format!("{s:?} is not all, mobile, tablet, desktop or unknown"))
    }
}
crate::str_param!(DeviceParam);

impl PartialSchema for DeviceParam {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            &["all", "mobile", "tablet", "desktop", "unknown"],
            "Only this device class; default all",
        )
    }
}
impl ToSchema for DeviceParam {}

/// `?metric=`: a web vital by name, in lower or upper case.
#[derive(Debug, Clone, Copy)]
pub struct MetricParam(Metric);

impl MetricParam {
    fn names() -> Vec<String> {
        Metric::ALL
            .iter()
            .map(|m| m.column().to_string())
            .chain(Metric::ALL.iter().map(|m| m.column().to_ascii_uppercase()))
            .collect()
    }
}

impl std::str::FromStr for MetricParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Metric::ALL
            .into_iter()
            .find(|m| m.column() == s || m.column().to_ascii_uppercase() == s)
            .map(MetricParam)
            .ok_or_else(|| format!("{s:?} is not lcp, inp, cls, fcp, ttfb or fid"))
    }
}
crate::str_param!(MetricParam);

impl PartialSchema for MetricParam {
    fn schema() -> RefOr<Schema> {
        let names = Self::names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        enum_schema(&names, "Which web vital; default lcp")
    }
}
impl ToSchema for MetricParam {}

/// The filters of the summary and the route table.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VitalsQuery {
    #[param(inline)]
    stat: Option<StatParam>,
    /// Only this route template, e.g. `/recipes/:id`; empty means every route.
    #[param(nullable = false)]
    route: Option<String>,
    #[param(inline)]
    device: Option<DeviceParam>,
}

/// The histogram's metric and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistogramQuery {
    #[param(inline)]
    metric: Option<MetricParam>,
    /// Only this route template; empty means every route.
    #[param(nullable = false)]
    route: Option<String>,
    #[param(inline)]
    device: Option<DeviceParam>,
}

fn filter(route: Option<String>, device: Option<DeviceParam>) -> Filter {
    Filter {
        route: route.filter(|r| !r.is_empty()),
        device: device.and_then(|d| d.0),
    }
}

fn exact_max(state: &AppState) -> u64 {
    state.config.performance.exact_max_samples
}

/// `GET /api/analytics/performance`: totals, every metric at `stat`, score, trend, rows.
#[utoipa::path(get, path = "/api/analytics/performance", tag = "Performance",
    summary = "Web vitals: totals, each metric at `stat` with its shares and rating, the 0-100 score, \
        busiest routes, devices, trend, newest samples",
    params(WindowQuery, VitalsQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn get(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
    Params(q): Params<VitalsQuery>,
) -> Result<Response, ApiError> {
    let stat = q.stat.map_or(Stat::P75, |s| s.0);
    let f = filter(q.route, q.device);
    read.json(query::summary(
        &state.store,
        window,
        f,
        stat,
        exact_max(&state),
    ))
    .await
}

/// `GET /api/analytics/performance/routes`: route × device, ranked by opportunity.
#[utoipa::path(get, path = "/api/analytics/performance/routes", tag = "Performance",
    summary = "Route x device groups: each metric at `stat` with its shares, the group's 0-100 score, page \
        views, and the site-score points fixing it would gain (opportunity), highest first",
    params(WindowQuery, VitalsQuery), security(("admin" = [])),
    responses((status = 200, description = "The groups", body = Object), ReadErrors))]
pub async fn routes(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
    Params(q): Params<VitalsQuery>,
) -> Result<Response, ApiError> {
    let stat = q.stat.map_or(Stat::P75, |s| s.0);
    let f = filter(q.route, q.device);
    read.json(query::groups(
        &state.store,
        window,
        f,
        stat,
        exact_max(&state),
    ))
    .await
}

/// `GET /api/analytics/performance/histogram?metric=lcp`.
#[utoipa::path(get, path = "/api/analytics/performance/histogram", tag = "Performance",
    summary = "A metric's distribution in (from, to] bins whose edges include its thresholds, each rated",
    params(WindowQuery, HistogramQuery), security(("admin" = [])),
    responses((status = 200, description = "The bins", body = Object), ReadErrors))]
pub async fn histogram(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
    Params(q): Params<HistogramQuery>,
) -> Result<Response, ApiError> {
    let metric = q.metric.map_or(Metric::Lcp, |m| m.0);
    let f = filter(q.route, q.device);
    read.json(query::histogram(
        &state.store,
        window,
        f,
        metric,
        exact_max(&state),
    ))
    .await
}
