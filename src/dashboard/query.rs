//! The overview: one read connection, one small query per stream, for the front page.

use std::collections::BTreeMap;

use duckdb::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::window::{Window, WindowJson};
use crate::store::{series, ts_param, JsonRow, Store, StoreError};
use crate::vitals::{Metric, Rating};

#[derive(Debug, Serialize)]
pub struct Overview {
    pub range: WindowJson,
    pub bucket_seconds: i64,
    pub events: EventTotals,
    pub series: Vec<JsonRow>,
    pub vitals: BTreeMap<&'static str, Vital>,
    pub ai: Value,
    pub database: Value,
}

#[derive(Debug, Serialize)]
pub struct EventTotals {
    pub total: u64,
    /// People, counted by `visitor_id` like the growth pages: the user id when the event
    /// carries one, else the cookieless visitor id.
    pub users: u64,
    pub sessions: u64,
    pub conversions: u64,
}

#[derive(Debug, Serialize)]
pub struct Vital {
    pub p75: Option<f64>,
    pub rating: Option<Rating>,
    pub count: u64,
    pub thresholds: [f64; 2],
}

const VITALS: [Metric; 5] = [
    Metric::Lcp,
    Metric::Inp,
    Metric::Cls,
    Metric::Fcp,
    Metric::Ttfb,
];

pub async fn overview(store: &Store, window: Window, slow: f64) -> Result<Overview, StoreError> {
    store
        .query(move |conn| overview_sync(conn, &window, slow))
        .await
}

fn overview_sync(conn: &Connection, w: &Window, slow: f64) -> Result<Overview, StoreError> {
    let (from, to) = (w.from_us(), w.to_us());
    let events = conn.query_row(
        "SELECT count(*), count(DISTINCT visitor_id), count(DISTINCT session_id), \
         (SELECT count(*) FROM conversions WHERE created_at >= $1 AND created_at < $2) \
         FROM user_events WHERE created_at >= $1 AND created_at < $2",
        params![ts_param(from), ts_param(to)],
        |r| {
            Ok(EventTotals {
                total: r.get(0)?,
                users: r.get(1)?,
                sessions: r.get(2)?,
                conversions: r.get(3)?,
            })
        },
    )?;
    let series = series(
        conn,
        "user_events",
        "count(*) AS events, count(DISTINCT visitor_id) AS users",
        from,
        to,
        w.bucket_us(),
    )?;
    let cols: Vec<String> = VITALS
        .iter()
        .map(|m| format!("quantile_cont({0}, 0.75), count({0})", m.column()))
        .collect();
    // Re-reported metrics count once: the newest report of each, as the Performance page.
    let (with, latest_params) = crate::vitals::query::latest(w, &Default::default());
    let vitals = conn.query_row(
        &format!("{with} SELECT {} FROM v", cols.join(", ")),
        duckdb::params_from_iter(latest_params.iter()),
        |r| {
            let mut out = BTreeMap::new();
            for (i, m) in VITALS.iter().enumerate() {
                let p75: Option<f64> = r.get(i * 2)?;
                let (good, poor) = m.thresholds();
                out.insert(
                    m.column(),
                    Vital {
                        p75,
                        rating: p75.map(|v| m.rate(v)),
                        count: r.get(i * 2 + 1)?,
                        thresholds: [good, poor],
                    },
                );
            }
            Ok(out)
        },
    )?;
    let ai = conn.query_row(
        "SELECT count(*), avg(cache_hit::DOUBLE), quantile_cont(duration, 0.75), avg((NOT success)::DOUBLE), \
         coalesce(sum(tokens), 0)::BIGINT FROM ai_performance_metrics WHERE created_at >= ? AND created_at < ?",
        params![ts_param(from), ts_param(to)],
        |r| {
            Ok(json!({
                "calls": r.get::<_, u64>(0)?,
                "cache_hit_rate": r.get::<_, Option<f64>>(1)?,
                "p75_duration": r.get::<_, Option<f64>>(2)?,
                "error_rate": r.get::<_, Option<f64>>(3)?,
                "tokens": r.get::<_, i64>(4)?,
            }))
        },
    )?;
    let database = conn.query_row(
        "SELECT count(*), count(*) FILTER (WHERE duration > ?), avg((duration > ?)::DOUBLE), \
         quantile_cont(duration, 0.95) FROM database_performance_metrics WHERE created_at >= ? AND created_at < ?",
        params![slow, slow, ts_param(from), ts_param(to)],
        |r| {
            Ok(json!({
                "queries": r.get::<_, u64>(0)?,
                "slow": r.get::<_, u64>(1)?,
                "slow_rate": r.get::<_, Option<f64>>(2)?,
                "p95_duration": r.get::<_, Option<f64>>(3)?,
                "slow_threshold": slow,
            }))
        },
    )?;
    Ok(Overview {
        range: w.json(),
        bucket_seconds: w.bucket_seconds(),
        events,
        series,
        vitals,
        ai,
        database,
    })
}
