//! HTTP handlers for performance: the reads, each with its typed query string, and the
//! OpenAPI operations of this capability (ingest is `http::ingest::handler`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use super::ingest::PerformanceItem;
use super::query::{Filter, Reads, Stat};
use super::{Device, Metric};
use crate::error::ApiError;
use crate::http::ingest::Accepted;
use crate::http::openapi::{IngestErrors, OneOrMany, ReadErrors};
use crate::http::params::Params;
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

crate::choice_param!(
    /// `?stat=`: which percentile a read reports; p75 is what Core Web Vitals are judged by.
    StatParam(Stat),
    "Percentile to report (linear interpolation); default p75",
    { "p50" => Stat::P50, "p75" => Stat::P75, "p90" => Stat::P90, "p95" => Stat::P95, "p99" => Stat::P99 }
);

crate::choice_param!(
    /// `?device=`: one device class, or `all` (the default).
    DeviceParam(Option<Device>),
    "Only this device class; default all",
    {
        "all" => None,
        "mobile" => Some(Device::Mobile),
        "tablet" => Some(Device::Tablet),
        "desktop" => Some(Device::Desktop),
        "unknown" => Some(Device::Unknown),
    }
);

crate::choice_param!(
    /// `?metric=`: a web vital by name, in lower or upper case.
    MetricParam(Metric),
    "Which web vital; default lcp",
    {
        "lcp" => Metric::Lcp, "inp" => Metric::Inp, "cls" => Metric::Cls,
        "fcp" => Metric::Fcp, "ttfb" => Metric::Ttfb, "fid" => Metric::Fid,
        "LCP" => Metric::Lcp, "INP" => Metric::Inp, "CLS" => Metric::Cls,
        "FCP" => Metric::Fcp, "TTFB" => Metric::Ttfb, "FID" => Metric::Fid,
    }
);

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

impl VitalsQuery {
    /// The filter and the statistic (p75 unless asked).
    fn parts(self) -> (Filter, Stat) {
        (
            filter(self.route, self.device),
            self.stat.map_or(Stat::P75, |s| s.0),
        )
    }
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
    let (f, stat) = q.parts();
    read.json(Reads::of(&state).summary(window, f, stat)).await
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
    let (f, stat) = q.parts();
    read.json(Reads::of(&state).groups(window, f, stat)).await
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
    read.json(Reads::of(&state).histogram(window, f, metric))
        .await
}
