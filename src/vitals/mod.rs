//! Performance monitoring: real-user Core Web Vitals per route and device, their
//! percentiles, ratings and a 0-100 score, fed by `gs.js` or by web-vitals objects.

mod api;
mod clickhouse;
mod exact;
mod filter;
mod ingest;
mod query;
mod rolled;
mod rollup;
mod route;
mod score;
mod stats;

use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

pub use crate::http::agent::Device;
pub use exact::{Headline, Vital};
pub use ingest::{PerformanceIn, PerformanceItem, WebVitalIn};

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: report ingest and the Performance page's reads.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/performance",
            post(handler::<PerformanceItem>).get(api::get),
        )
        .route("/api/analytics/performance/routes", get(api::routes))
        .route("/api/analytics/performance/histogram", get(api::histogram))
}

/// Its background task: rolls up each hour of samples as it ends (DuckDB only).
pub fn start(state: &AppState) {
    rollup::spawn(state);
}

/// Does now what the background task would do next (the demo, after writing); returns
/// how many hours it rolled up (none on ClickHouse, which keeps no roll-up).
pub async fn catch_up(store: &Store) -> Result<u32, StoreError> {
    rollup::catch_up(store).await
}

/// What the dashboard's overview shows of web vitals over `window`: each metric's p75,
/// and whether those are estimates (read from the roll-up, as the Performance page reads
/// long windows over more than `performance.exact_max_samples` samples on DuckDB; exact
/// on ClickHouse).
pub async fn headline(state: &AppState, window: Window) -> Result<(Headline, bool), StoreError> {
    query::Reads::of(state).headline(window).await
}

/// A web-vitals metric, with the thresholds web.dev publishes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Lcp,
    Inp,
    Cls,
    Fcp,
    Ttfb,
    Fid,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Lcp,
        Metric::Inp,
        Metric::Cls,
        Metric::Fcp,
        Metric::Ttfb,
        Metric::Fid,
    ];

    /// The column, and the key used in JSON.
    pub fn column(self) -> &'static str {
        match self {
            Metric::Lcp => "lcp",
            Metric::Inp => "inp",
            Metric::Cls => "cls",
            Metric::Fcp => "fcp",
            Metric::Ttfb => "ttfb",
            Metric::Fid => "fid",
        }
    }

    /// `LCP`, `lcp` and `Lcp` all name LCP: web-vitals sends upper case.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.column().eq_ignore_ascii_case(name.trim()))
    }

    /// (good up to and including, poor above).
    pub fn thresholds(self) -> (f64, f64) {
        match self {
            Metric::Lcp => (2500.0, 4000.0),
            Metric::Inp => (200.0, 500.0),
            Metric::Cls => (0.1, 0.25),
            Metric::Fcp => (1800.0, 3000.0),
            Metric::Ttfb => (800.0, 1800.0),
            Metric::Fid => (100.0, 300.0),
        }
    }

    pub fn rate(self, value: f64) -> Rating {
        let (good, poor) = self.thresholds();
        if value <= good {
            Rating::Good
        } else if value <= poor {
            Rating::NeedsImprovement
        } else {
            Rating::Poor
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rating {
    Good,
    NeedsImprovement,
    Poor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_at_the_edges() {
        assert_eq!(Metric::Lcp.rate(2500.0), Rating::Good);
        assert_eq!(Metric::Lcp.rate(2500.1), Rating::NeedsImprovement);
        assert_eq!(Metric::Lcp.rate(4000.0), Rating::NeedsImprovement);
        assert_eq!(Metric::Lcp.rate(4000.1), Rating::Poor);
        assert_eq!(Metric::Cls.rate(0.1), Rating::Good);
        assert_eq!(Metric::Cls.rate(0.26), Rating::Poor);
        assert_eq!(Metric::Inp.rate(201.0), Rating::NeedsImprovement);
        assert_eq!(Metric::Ttfb.rate(1800.0), Rating::NeedsImprovement);
        assert_eq!(Metric::Fid.rate(300.5), Rating::Poor);
    }

    #[test]
    fn names_as_web_vitals_sends_them() {
        assert_eq!(Metric::from_name("LCP"), Some(Metric::Lcp));
        assert_eq!(Metric::from_name("ttfb"), Some(Metric::Ttfb));
        assert_eq!(Metric::from_name("Next.js-hydration"), None);
    }
}
