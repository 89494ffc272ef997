//! The AI-call reads on the ClickHouse engine: each query's ClickHouse SQL, side by side
//! with its DuckDB twin in `query.rs`, assembled by the same code there (`report`,
//! `Headline::of`), so both engines give the same answers. Percentiles are DuckDB's
//! `quantile_cont` (`store::clickhouse::fold::quantile_cont`); booleans are UInt8 columns.

use serde_json::Value;

use super::query::{self, Headline, Summary, Totals, TABLE, TOP_MODELS, TOP_USERS};
use crate::http::Window;
use crate::store::clickhouse::fold::{count, float, json_row, quantile_cont, quantiles_cont, Kind};
use crate::store::clickhouse::{time_range, ChError, ClickHouse};
use crate::store::{JsonRow, StoreError};

/// `query::COLUMNS` on ClickHouse: name and how DuckDB's JSON shows it.
const COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Same),
    ("request_id", Kind::Same),
    ("endpoint", Kind::Same),
    ("model", Kind::Same),
    ("provider", Kind::Same),
    ("tokens", Kind::Same),
    ("prompt_tokens", Kind::Same),
    ("completion_tokens", Kind::Same),
    ("duration", Kind::Float),
    ("ttft", Kind::Float),
    ("success", Kind::Bool),
    ("error", Kind::Same),
    ("cache_hit", Kind::Bool),
    ("stream", Kind::Bool),
    ("demo", Kind::Bool),
    ("cost", Kind::Float),
    ("tokens_saved", Kind::Same),
    ("user_id", Kind::Same),
    ("ip", Kind::Same),
    ("timestamp", Kind::Same),
    ("created_at", Kind::Time),
    ("event_time", Kind::Time),
];

/// `query::GROUP_STATS`'s columns after the group's own.
const GROUP_STATS: &[(&str, Kind)] = &[
    ("calls", Kind::Same),
    ("error_rate", Kind::Float),
    ("cache_hit_rate", Kind::Float),
    ("avg_duration", Kind::Float),
    ("p50_duration", Kind::Float),
    ("p75_duration", Kind::Float),
    ("p95_duration", Kind::Float),
    ("tokens", Kind::Same),
    ("avg_tokens", Kind::Float),
    ("cost", Kind::Float),
];

const SERIES: &[(&str, Kind)] = &[
    ("t", Kind::Time),
    ("calls", Kind::Same),
    ("errors", Kind::Same),
    ("cache_hits", Kind::Same),
    ("p50_duration", Kind::Float),
    ("p75_duration", Kind::Float),
    ("p95_duration", Kind::Float),
    ("tokens", Kind::Same),
    ("cost", Kind::Float),
];

async fn rows(ch: &ClickHouse, sql: &str) -> Result<Vec<Value>, StoreError> {
    ch.rows(sql).await.map_err(StoreError::ClickHouse)
}

fn range(w: &Window) -> String {
    time_range("event_time", "event_at", w.from_us(), w.to_us())
}

/// The window's calls with the summed columns renamed: in ClickHouse an alias shadows
/// the column of its name, so `sum(tokens) AS tokens` beside `avg(tokens)` would nest
/// two aggregates.
fn calls(ch: &ClickHouse, w: &Window) -> String {
    format!(
        "(SELECT model, provider AS prov, user_id, event_time, duration, ttft, success, cache_hit, stream, demo, \
         tokens AS tk, prompt_tokens AS ptk, completion_tokens AS ctk, cost AS usd, tokens_saved AS saved \
         FROM {} WHERE {})",
        ch.table(TABLE),
        range(w)
    )
}

/// `query::GROUP_STATS` in ClickHouse.
fn group_stats() -> String {
    format!(
        "count() AS calls, avg(1 - success) AS error_rate, avg(cache_hit) AS cache_hit_rate, \
         avg(duration) AS avg_duration, {} AS p50_duration, {} AS p75_duration, {} AS p95_duration, \
         ifNull(sum(tk), 0) AS tokens, avg(tk) AS avg_tokens, sum(usd) AS cost",
        quantile_cont("duration", 0.5),
        quantile_cont("duration", 0.75),
        quantile_cont("duration", 0.95),
    )
}

async fn totals(ch: &ClickHouse, w: &Window) -> Result<Totals, StoreError> {
    let sql = format!(
        "SELECT count() AS calls, countIf(success = 0) AS errors, avg(1 - success) AS error_rate, \
         countIf(cache_hit = 1) AS cache_hits, avg(cache_hit) AS cache_hit_rate, avg(duration) AS avg_duration, \
         ifNull(sum(tk), 0) AS tokens, avg(tk) AS avg_tokens, \
         ifNull(sum(ptk), 0) AS prompt_tokens, ifNull(sum(ctk), 0) AS completion_tokens, \
         ifNull(sum(usd), 0) AS cost, countIf(ifNull(demo, 0) = 1) AS demo_calls, \
         ifNull(sum(saved), 0) AS tokens_saved FROM {}",
        calls(ch, w),
    );
    let r = rows(ch, &sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::ClickHouse(ChError::Decode("no totals row".into())))?;
    let from = calls(ch, w);
    let p = quantiles_cont(ch, "duration", "1", &from, &[0.5, 0.75, 0.95, 0.99])
        .await
        .map_err(StoreError::ClickHouse)?;
    // DuckDB's FILTER (WHERE stream AND success): a NULL `stream` is not streamed.
    let streamed = "ifNull(stream, 0) = 1 AND success = 1";
    let ttft = quantiles_cont(ch, "ttft", streamed, &from, &[0.5])
        .await
        .map_err(StoreError::ClickHouse)?;
    Ok(Totals {
        calls: count(&r, "calls"),
        errors: count(&r, "errors"),
        error_rate: float(&r, "error_rate"),
        cache_hits: count(&r, "cache_hits"),
        cache_hit_rate: float(&r, "cache_hit_rate"),
        avg_duration: float(&r, "avg_duration"),
        p50_duration: p[0],
        p75_duration: p[1],
        p95_duration: p[2],
        p99_duration: p[3],
        p50_ttft: ttft[0],
        tokens: count(&r, "tokens"),
        avg_tokens: float(&r, "avg_tokens"),
        prompt_tokens: count(&r, "prompt_tokens"),
        completion_tokens: count(&r, "completion_tokens"),
        cost: float(&r, "cost").unwrap_or(0.0),
        demo_calls: count(&r, "demo_calls"),
        tokens_saved: count(&r, "tokens_saved"),
    })
}

/// `query::busiest`: the `limit` values of `key` with the most calls, each with its
/// statistics; `columns` (SQL, their names and kinds) name the group.
async fn busiest(
    ch: &ClickHouse,
    w: &Window,
    key: &str,
    columns: (&str, &[(&str, Kind)]),
    named_only: bool,
    limit: u32,
) -> Result<Vec<JsonRow>, StoreError> {
    let named = if named_only {
        format!("AND {key} IS NOT NULL")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {}, {} FROM {} WHERE 1 {named} GROUP BY {key} ORDER BY calls DESC, {key} LIMIT {limit}",
        columns.0,
        group_stats(),
        calls(ch, w),
    );
    let kinds: Vec<(&str, Kind)> = columns.1.iter().chain(GROUP_STATS).copied().collect();
    Ok(rows(ch, &sql)
        .await?
        .iter()
        .map(|r| json_row(r, &kinds))
        .collect())
}

pub async fn summary(ch: &ClickHouse, w: &Window) -> Result<Summary, StoreError> {
    let totals = totals(ch, w).await?;
    // DuckDB's string_agg(DISTINCT provider, ', ') in no stated order; sorted here.
    let by_model = (
        "model, if(empty(groupUniqArray(prov)), NULL, \
         arrayStringConcat(arraySort(groupUniqArray(prov)), ', ')) AS provider",
        &[("model", Kind::Same), ("provider", Kind::Same)][..],
    );
    let models = busiest(ch, w, "model", by_model, false, TOP_MODELS).await?;
    let by_user = ("user_id AS user", &[("user", Kind::Same)][..]);
    let users = busiest(ch, w, "user_id", by_user, true, TOP_USERS).await?;
    let b = w.bucket_us().max(1);
    let series = rows(
        ch,
        &format!(
            "SELECT intDiv(event_time, {b}) * {b} AS t, count() AS calls, countIf(success = 0) AS errors, \
             countIf(cache_hit = 1) AS cache_hits, {} AS p50_duration, {} AS p75_duration, {} AS p95_duration, \
             ifNull(sum(tk), 0) AS tokens, ifNull(sum(usd), 0) AS cost FROM {} GROUP BY t ORDER BY t",
            quantile_cont("duration", 0.5),
            quantile_cont("duration", 0.75),
            quantile_cont("duration", 0.95),
            calls(ch, w),
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, SERIES))
    .collect();
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let newest = rows(
        ch,
        &format!(
            "SELECT {} FROM {} WHERE {} ORDER BY event_time DESC, id LIMIT {} OFFSET {}",
            names.join(", "),
            ch.table(TABLE),
            range(w),
            w.limit,
            w.offset
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, COLUMNS))
    .collect();
    Ok(query::report(w, totals, models, users, series, newest))
}

pub async fn headline(ch: &ClickHouse, w: &Window) -> Result<Headline, StoreError> {
    Ok(Headline::of(&totals(ch, w).await?))
}
