//! Reads over `ai_performance_metrics`: call totals, error and cache-hit rates, latency
//! percentiles, tokens and cost, per model and per user, and their trends.

use duckdb::{params, Connection};
use serde::Serialize;

use crate::http::window::{Report, Window};
use crate::store::timings::{share, Timings};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

pub(super) const TABLE: &str = "ai_performance_metrics";
const COLUMNS: &str =
    "id::VARCHAR AS id, request_id, endpoint, model, provider, tokens, prompt_tokens, \
    completion_tokens, duration, ttft, success, error, cache_hit, stream, demo, cost, tokens_saved, \
    user_id, ip, timestamp, created_at, event_time";
pub(super) const TOP_MODELS: u32 = 20;
pub(super) const TOP_USERS: u32 = 20;
/// Per-group aggregates shared by the model and user breakdowns.
const GROUP_STATS: &str = "count(*) AS calls, avg((NOT success)::DOUBLE) AS error_rate, \
    avg(cache_hit::DOUBLE) AS cache_hit_rate, avg(duration) AS avg_duration, \
    quantile_cont(duration, 0.5) AS p50_duration, quantile_cont(duration, 0.75) AS p75_duration, \
    quantile_cont(duration, 0.95) AS p95_duration, coalesce(sum(tokens), 0)::BIGINT AS tokens, \
    avg(tokens) AS avg_tokens, sum(cost) AS cost";

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    /// Busiest models first.
    pub models: Vec<JsonRow>,
    /// Users with the most calls first (calls without a user are left out).
    pub users: Vec<JsonRow>,
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
    pub p50_duration: Option<f64>,
    pub p75_duration: Option<f64>,
    pub p95_duration: Option<f64>,
    pub p99_duration: Option<f64>,
    /// Milliseconds to the first byte, streamed calls that succeeded.
    pub p50_ttft: Option<f64>,
    pub tokens: u64,
    /// Tokens per call.
    pub avg_tokens: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// USD; calls without a known price count as 0.
    pub cost: f64,
    pub demo_calls: u64,
    /// Estimated tokens removed by whitespace normalisation.
    pub tokens_saved: u64,
}

pub async fn summary(store: &Store, window: Window) -> Result<Summary, StoreError> {
    store.query(move |conn| summary_sync(conn, &window)).await
}

/// What the dashboard's overview shows of AI calls.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub calls: u64,
    pub cache_hit_rate: Option<f64>,
    /// Milliseconds.
    pub p75_duration: Option<f64>,
    pub error_rate: Option<f64>,
    pub tokens: u64,
    /// The figures read from log buckets (within 2%), as paths into the overview.
    #[serde(skip)]
    pub estimated: &'static [&'static str],
}

/// AI calls in the timing roll-up behind long windows.
pub static TIMINGS: Timings = Timings {
    stream: 1,
    table: TABLE,
    failed: "NOT success",
    hit: "cache_hit",
    tokens: "tokens",
};

pub async fn headline(store: &Store, window: Window) -> Result<Headline, StoreError> {
    store
        .query(move |conn| {
            if let Some(s) = TIMINGS.long_window(conn, window.from_us(), window.to_us())? {
                return Ok(Headline {
                    calls: s.calls,
                    cache_hit_rate: share(s.hits, s.calls),
                    p75_duration: s.durations.quantile(0.75),
                    error_rate: share(s.failed, s.calls),
                    tokens: s.tokens,
                    estimated: &["ai.p75_duration"],
                });
            }
            Ok(Headline::of(&totals(conn, &window)?))
        })
        .await
}

impl Headline {
    /// The headline of a window's exact totals (short windows, and ClickHouse).
    pub(super) fn of(t: &Totals) -> Headline {
        Headline {
            calls: t.calls,
            cache_hit_rate: t.cache_hit_rate,
            p75_duration: t.p75_duration,
            error_rate: t.error_rate,
            tokens: t.tokens,
            estimated: &[],
        }
    }
}

fn totals(conn: &Connection, w: &Window) -> Result<Totals, StoreError> {
    let range = params![ts_param(w.from_us()), ts_param(w.to_us())];
    Ok(conn.query_row(
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE NOT success), avg((NOT success)::DOUBLE), \
             count(*) FILTER (WHERE cache_hit), avg(cache_hit::DOUBLE), avg(duration), \
             quantile_cont(duration, 0.5), quantile_cont(duration, 0.75), quantile_cont(duration, 0.95), \
             quantile_cont(duration, 0.99), quantile_cont(ttft, 0.5) FILTER (WHERE stream AND success), \
             coalesce(sum(tokens), 0)::BIGINT, avg(tokens), \
             coalesce(sum(prompt_tokens), 0)::BIGINT, coalesce(sum(completion_tokens), 0)::BIGINT, \
             coalesce(sum(cost), 0)::DOUBLE, count(*) FILTER (WHERE demo), coalesce(sum(tokens_saved), 0)::BIGINT \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ?"
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
                p50_duration: r.get(6)?,
                p75_duration: r.get(7)?,
                p95_duration: r.get(8)?,
                p99_duration: r.get(9)?,
                p50_ttft: r.get(10)?,
                tokens: r.get(11)?,
                avg_tokens: r.get(12)?,
                prompt_tokens: r.get(13)?,
                completion_tokens: r.get(14)?,
                cost: r.get(15)?,
                demo_calls: r.get(16)?,
                tokens_saved: r.get(17)?,
            })
        },
    )?)
}

/// The `limit` values of `key` with the most calls in the window, each with its call
/// statistics; `columns` name the group. `named_only` leaves out calls without a `key`.
fn busiest(
    conn: &Connection,
    w: &Window,
    (key, columns): (&str, &str),
    named_only: bool,
    limit: u32,
) -> Result<Vec<JsonRow>, StoreError> {
    let named = if named_only {
        format!("AND {key} IS NOT NULL")
    } else {
        String::new()
    };
    query_json(
        conn,
        &format!(
            "SELECT {columns}, {GROUP_STATS} \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ? {named} \
             GROUP BY {key} ORDER BY calls DESC, {key} LIMIT ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), limit],
        &[],
    )
}

fn summary_sync(conn: &Connection, w: &Window) -> Result<Summary, StoreError> {
    let totals = totals(conn, w)?;
    let by_model = (
        "model",
        "model, string_agg(DISTINCT provider, ', ') AS provider",
    );
    let models = busiest(conn, w, by_model, false, TOP_MODELS)?;
    let users = busiest(conn, w, ("user_id", "user_id AS user"), true, TOP_USERS)?;
    let series = series(
        conn,
        TABLE,
        "count(*) AS calls, count(*) FILTER (WHERE NOT success) AS errors, \
         count(*) FILTER (WHERE cache_hit) AS cache_hits, quantile_cont(duration, 0.5) AS p50_duration, \
         quantile_cont(duration, 0.75) AS p75_duration, quantile_cont(duration, 0.95) AS p95_duration, \
         coalesce(sum(tokens), 0)::BIGINT AS tokens, coalesce(sum(cost), 0)::DOUBLE AS cost", &w.span())?;
    let rows = newest_rows(conn, TABLE, COLUMNS, &[], &w.span())?;
    Ok(report(w, totals, models, users, series, rows))
}

/// The report of either engine's parts; its rows are paged over all the window's calls.
pub(super) fn report(
    w: &Window,
    totals: Totals,
    models: Vec<JsonRow>,
    users: Vec<JsonRow>,
    series: Vec<JsonRow>,
    rows: Vec<JsonRow>,
) -> Summary {
    let total = totals.calls;
    w.report(
        series,
        Stats {
            totals,
            models,
            users,
        },
        rows,
        total,
    )
}
