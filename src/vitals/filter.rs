//! What narrows a web-vitals read: the route and device `Filter`, the percentile `Stat`,
//! and `latest`, the SQL for a window's rows with each metric instance's newest report.

use duckdb::types::Value as DbValue;
use serde::Serialize;

use super::Device;
use crate::http::window::Window;
use crate::store::ts_param;

/// The columns of a page of rows, as the reads return them.
pub const COLUMNS: &str = "id::VARCHAR AS id, user_id::VARCHAR AS user_id, session_id, route, path, device, \
    lcp, inp, cls, fcp, ttfb, fid, metric, metric_id, navigation_type, attribution, user_agent, connection, ip, \
    timestamp, created_at, event_time";

/// Which percentile to report; p75 is what Core Web Vitals are judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    P50,
    P75,
    P90,
    P95,
    P99,
}

impl Stat {
    pub fn q(self) -> f64 {
        match self {
            Stat::P50 => 0.5,
            Stat::P75 => 0.75,
            Stat::P90 => 0.9,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
        }
    }
}

/// What narrows a read besides the time window.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub route: Option<String>,
    pub device: Option<Device>,
}

impl Filter {
    /// `" AND route = ? AND device = ?"` for what is set, and its parameters.
    pub fn sql(&self) -> (String, Vec<DbValue>) {
        let mut sql = String::new();
        let mut params = Vec::new();
        if let Some(r) = &self.route {
            sql.push_str(" AND route = ?");
            params.push(DbValue::Text(r.clone()));
        }
        if let Some(d) = self.device {
            sql.push_str(" AND device = ?");
            params.push(DbValue::Text(d.as_str().into()));
        }
        (sql, params)
    }
}

/// `WITH ... v AS (...)`: the window's rows by event time (when the page was viewed, as
/// every stream's windows), the newest report per (metric_id, metric). Only keys that have
/// a row marked `rereport` can hold superseded rows, so only those are grouped; every other
/// row passes through a hash join that finds nothing.
pub fn latest(w: &Window, f: &Filter) -> (String, Vec<DbValue>) {
    latest_since(w, f, None)
}

/// `latest` over the rows received at or after `since` (µs, `created_at`) only: the raw
/// tail the roll-up does not hold yet (it rolls rows up by the hour they were received).
pub fn latest_since(w: &Window, f: &Filter, since: Option<i64>) -> (String, Vec<DbValue>) {
    let (filters, extra) = f.sql();
    let mut params = vec![ts_param(w.from_us()), ts_param(w.to_us())];
    let received = match since {
        Some(us) => {
            params.push(ts_param(us));
            " AND created_at >= ?"
        }
        None => "",
    };
    params.extend(extra);
    let sql = format!(
        "WITH w AS (SELECT * FROM performance_metrics WHERE event_time >= ? AND event_time < ?{received}{filters}), \
         rk AS (SELECT DISTINCT metric_id, coalesce(metric, '') AS metric FROM w WHERE rereport), \
         sup AS (SELECT w.metric_id, coalesce(w.metric, '') AS metric, arg_max(w.id, w.created_at) AS keep \
                 FROM w JOIN rk ON w.metric_id = rk.metric_id AND coalesce(w.metric, '') = rk.metric GROUP BY ALL), \
         v AS (SELECT w.* FROM w LEFT JOIN sup ON w.metric_id = sup.metric_id AND coalesce(w.metric, '') = sup.metric \
               WHERE sup.keep IS NULL OR sup.keep = w.id) "
    );
    (sql, params)
}
