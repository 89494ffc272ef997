//! Reads over `ai_performance_metrics`: call totals, error and cache-hit rates, latency, models.

use duckdb::{params, Connection};
use serde::Serialize;

use crate::http::window::{Report, Window};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

const TABLE: &str = "ai_performance_metrics";
const COLUMNS: &str =
    "id::VARCHAR AS id, request_id, endpoint, model, tokens, duration, success, error, \
    cache_hit, user_id::VARCHAR AS user_id, ip, timestamp, created_at";
const TOP_MODELS: u32 = 20;

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    /// Busiest models first.
    pub models: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub cache_hits: u64,
    pub cache_hit_rate: Option<f64>,
    /// Milliseconds.
    pub avg_duration: Option<f64>,
    pub p75_duration: Option<f64>,
    pub p95_duration: Option<f64>,
    pub tokens: u64,
    pub avg_tokens: Option<f64>,
}

pub async fn summary(store: &Store, window: Window) -> Result<Summary, StoreError> {
    store.query(move |conn| summary_sync(conn, &window)).await
}

fn summary_sync(conn: &Connection, w: &Window) -> Result<Summary, StoreError> {
    let range = params![ts_param(w.from_us()), ts_param(w.to_us())];
    let totals = conn.query_row(
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE NOT success), avg((NOT success)::DOUBLE), \
             count(*) FILTER (WHERE cache_hit), avg(cache_hit::DOUBLE), avg(duration), \
             quantile_cont(duration, 0.75), quantile_cont(duration, 0.95), coalesce(sum(tokens), 0)::BIGINT, avg(tokens) \
             FROM {TABLE} WHERE created_at >= ? AND created_at < ?"
        ),
        range,
        |r| {
            Ok(Totals {
                calls: r.get(0)?,
                errors: r.get(1)?,
                error_rate: r.get(2)?,
                cache_hits: r.get(3)?,
                cache_hit_rate: r.get(4)?,
                avg_duration: r.get(5)?,
                p75_duration: r.get(6)?,
                p95_duration: r.get(7)?,
                tokens: r.get(8)?,
                avg_tokens: r.get(9)?,
            })
        },
    )?;
    let models = query_json(
        conn,
        &format!(
            "SELECT model, count(*) AS calls, avg((NOT success)::DOUBLE) AS error_rate, \
             avg(cache_hit::DOUBLE) AS cache_hit_rate, avg(duration) AS avg_duration, \
             quantile_cont(duration, 0.75) AS p75_duration, coalesce(sum(tokens), 0)::BIGINT AS tokens \
             FROM {TABLE} WHERE created_at >= ? AND created_at < ? \
             GROUP BY model ORDER BY calls DESC, model LIMIT ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), TOP_MODELS],
        &[],
    )?;
    let series = series(
        conn,
        TABLE,
        "count(*) AS calls, count(*) FILTER (WHERE NOT success) AS errors, \
         count(*) FILTER (WHERE cache_hit) AS cache_hits, quantile_cont(duration, 0.75) AS p75_duration",
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
    let total = totals.calls;
    Ok(w.report(series, Stats { totals, models }, rows, total))
}
