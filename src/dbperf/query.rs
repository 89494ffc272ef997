//! Reads over `database_performance_metrics`: latency, slow-query rate, cache hits, slowest queries.

use duckdb::{params, Connection};
use serde::Serialize;

use crate::http::window::{Report, Window};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

const TABLE: &str = "database_performance_metrics";
const COLUMNS: &str =
    "id::VARCHAR AS id, query, duration, rows, cached, user_id::VARCHAR AS user_id, \
    ip, timestamp, created_at, event_time";
const TOP_QUERIES: u32 = 10;

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    /// Slowest by average first; identical query texts are grouped.
    pub slowest: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub queries: u64,
    /// Milliseconds.
    pub avg_duration: Option<f64>,
    pub p75_duration: Option<f64>,
    pub p95_duration: Option<f64>,
    /// Queries slower than `slow_threshold` ms (`database.slow_query_threshold`).
    pub slow: u64,
    pub slow_rate: Option<f64>,
    pub slow_threshold: f64,
    pub cached: u64,
    pub cache_hit_rate: Option<f64>,
}

pub async fn summary(
    store: &Store,
    window: Window,
    slow_threshold: f64,
) -> Result<Summary, StoreError> {
    store
        .query(move |conn| summary_sync(conn, &window, slow_threshold))
        .await
}

/// What the dashboard's overview shows of query timings.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub queries: u64,
    pub slow: u64,
    pub slow_rate: Option<f64>,
    /// Milliseconds.
    pub p95_duration: Option<f64>,
    pub slow_threshold: f64,
}

pub async fn headline(
    store: &Store,
    window: Window,
    slow_threshold: f64,
) -> Result<Headline, StoreError> {
    store
        .query(move |conn| {
            let t = totals(conn, &window, slow_threshold)?;
            Ok(Headline {
                queries: t.queries,
                slow: t.slow,
                slow_rate: t.slow_rate,
                p95_duration: t.p95_duration,
                slow_threshold: t.slow_threshold,
            })
        })
        .await
}

fn totals(conn: &Connection, w: &Window, slow: f64) -> Result<Totals, StoreError> {
    Ok(conn.query_row(
        &format!(
            "SELECT count(*), avg(duration), quantile_cont(duration, 0.75), quantile_cont(duration, 0.95), \
             count(*) FILTER (WHERE duration > ?), avg((duration > ?)::DOUBLE), \
             count(*) FILTER (WHERE cached), avg(cached::DOUBLE) \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ?"
        ),
        params![slow, slow, ts_param(w.from_us()), ts_param(w.to_us())],
        |r| {
            Ok(Totals {
                queries: r.get(0)?,
                avg_duration: r.get(1)?,
                p75_duration: r.get(2)?,
                p95_duration: r.get(3)?,
                slow: r.get(4)?,
                slow_rate: r.get(5)?,
                slow_threshold: slow,
                cached: r.get(6)?,
                cache_hit_rate: r.get(7)?,
            })
        },
    )?)
}

fn summary_sync(conn: &Connection, w: &Window, slow: f64) -> Result<Summary, StoreError> {
    let totals = totals(conn, w, slow)?;
    let slowest = query_json(
        conn,
        &format!(
            "SELECT query, count(*) AS calls, avg(duration) AS avg_duration, max(duration) AS max_duration, \
             quantile_cont(duration, 0.75) AS p75_duration, avg(cached::DOUBLE) AS cache_hit_rate \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ? \
             GROUP BY query ORDER BY avg_duration DESC, query LIMIT ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), TOP_QUERIES],
        &[],
    )?;
    // `slow` is a number from our config, formatted as a literal because series() binds
    // only the window.
    let series = series(
        conn,
        TABLE,
        &format!(
            "count(*) AS queries, count(*) FILTER (WHERE duration > {slow:?}) AS slow, \
             quantile_cont(duration, 0.95) AS p95_duration"
        ),
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
    let total = totals.queries;
    Ok(w.report(series, Stats { totals, slowest }, rows, total))
}
