//! Reads over `performance_metrics`: totals, p75 and rating per metric, routes, newest rows.

use std::collections::BTreeMap;

use duckdb::{params, Connection};
use serde::Serialize;

use super::{Metric, Rating};
use crate::http::window::{Report, Window};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

const TABLE: &str = "performance_metrics";
const COLUMNS: &str = "id::VARCHAR AS id, user_id::VARCHAR AS user_id, session_id, route, \
    lcp, inp, cls, fcp, ttfb, fid, user_agent, connection, ip, timestamp, created_at";
const TOP_ROUTES: u32 = 20;

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    /// Keyed by metric name (`lcp`, `inp`, ...).
    pub vitals: BTreeMap<&'static str, VitalStats>,
    /// Busiest routes first, with the p75 of each metric.
    pub routes: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub samples: u64,
    pub sessions: u64,
    pub users: u64,
    pub routes: u64,
}

#[derive(Debug, Serialize)]
pub struct VitalStats {
    pub count: u64,
    pub avg: Option<f64>,
    pub p75: Option<f64>,
    /// Share of samples rated good, 0..1.
    pub good_share: Option<f64>,
    /// The rating of the p75: how the site does for three visits in four.
    pub rating: Option<Rating>,
    pub thresholds: [f64; 2],
}

pub async fn summary(store: &Store, window: Window) -> Result<Summary, StoreError> {
    store.query(move |conn| summary_sync(conn, &window)).await
}

fn summary_sync(conn: &Connection, w: &Window) -> Result<Summary, StoreError> {
    let per_metric: Vec<String> = Metric::ALL
        .iter()
        .map(|m| {
            let (c, good) = (m.column(), m.thresholds().0);
            format!("count({c}), avg({c}), quantile_cont({c}, 0.75), avg(({c} <= {good})::DOUBLE)")
        })
        .collect();
    let sql = format!(
        "SELECT count(*), count(DISTINCT session_id), count(DISTINCT user_id), count(DISTINCT route), {} \
         FROM {TABLE} WHERE created_at >= ? AND created_at < ?",
        per_metric.join(", ")
    );
    let range = params![ts_param(w.from_us()), ts_param(w.to_us())];
    let (totals, vitals) = conn.query_row(&sql, range, |r| {
        let totals = Totals {
            samples: r.get(0)?,
            sessions: r.get(1)?,
            users: r.get(2)?,
            routes: r.get(3)?,
        };
        let mut vitals = BTreeMap::new();
        for (i, m) in Metric::ALL.iter().enumerate() {
            let base = 4 + i * 4;
            let p75: Option<f64> = r.get(base + 2)?;
            let (good, poor) = m.thresholds();
            vitals.insert(
                m.column(),
                VitalStats {
                    count: r.get(base)?,
                    avg: r.get(base + 1)?,
                    p75,
                    good_share: r.get(base + 3)?,
                    rating: p75.map(|v| m.rate(v)),
                    thresholds: [good, poor],
                },
            );
        }
        Ok((totals, vitals))
    })?;
    let p75s: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("quantile_cont({0}, 0.75) AS {0}", m.column()))
        .collect();
    let routes = query_json(
        conn,
        &format!(
            "SELECT route, count(*) AS samples, {} FROM {TABLE} WHERE created_at >= ? AND created_at < ? \
             GROUP BY route ORDER BY samples DESC, route LIMIT ?",
            p75s.join(", ")
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), TOP_ROUTES],
        &[],
    )?;
    let series = series(
        conn,
        TABLE,
        "count(*) AS samples, quantile_cont(lcp, 0.75) AS lcp, quantile_cont(inp, 0.75) AS inp, \
         quantile_cont(cls, 0.75) AS cls",
        w.from_us(),
        w.to_us(),
        w.bucket_us(),
    )?;
    let rows = newest_rows(
        conn,
        TABLE,
        COLUMNS,
        &[],
        w.from_us(),
        w.to_us(),
        w.limit,
        w.offset,
    )?;
    let total = totals.samples;
    Ok(w.report(
        series,
        Stats {
            totals,
            vitals,
            routes,
        },
        rows,
        total,
    ))
}
