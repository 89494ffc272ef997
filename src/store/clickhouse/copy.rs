//! `growth-stack migrate --to-clickhouse URL`: a DuckDB file's events, conversions, web
//! vitals, AI calls, query timings and errors copied into ClickHouse, so a user who moves
//! to the ClickHouse engine keeps their history. The streams that stay in each node's
//! DuckDB (host samples, recommendations) are not copied.
//!
//! Resumable by hour of event time: an hour whose row count in ClickHouse already equals
//! the file's is skipped; any other hour is topped up with the rows whose id ClickHouse
//! does not hold yet. So a run that stopped half-way (killed, ClickHouse down) is simply
//! run again, nothing is copied twice, and rows ClickHouse received from live nodes meanwhile
//! stay. At the end every hour is counted again on both sides: ClickHouse must hold at
//! least the file's rows of each hour, or the command fails naming the hour.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use duckdb::{params, Connection};
use serde::Deserialize;
use uuid::Uuid;

use super::writer::INSERT_SETTINGS;
use super::{rows, time_range, ClickHouse};
use crate::store::rows::{
    AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
};
use crate::store::{ts_param, Store, StoreError};

const HOUR_US: i64 = 3_600_000_000;

/// What one table's copy did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    /// Rows in the DuckDB file.
    pub rows: u64,
    /// Rows this run sent.
    pub copied: u64,
    /// Rows ClickHouse already held (an earlier run, or the same ids from elsewhere).
    pub already: u64,
    /// Rows ClickHouse holds afterwards over the file's hours.
    pub in_clickhouse: u64,
}

/// The tables copied, in order.
pub const TABLES: [&str; 6] = [
    "user_events",
    "conversions",
    "performance_metrics",
    "ai_performance_metrics",
    "database_performance_metrics",
    "app_errors",
];

/// The DuckDB column the hours are counted by: errors have no event time and are aged by
/// their receive time, which ClickHouse keeps as their `event_time` (migration 0005).
fn age(table: &str) -> &'static str {
    match table {
        "app_errors" => "created_at",
        _ => "event_time",
    }
}

/// Copies each of `TABLES`; see the module comment.
pub async fn from_duckdb(store: &Store, ch: &ClickHouse) -> Result<Vec<Copied>, StoreError> {
    let mut out = Vec::new();
    for table in TABLES {
        out.push(copy_table(store, ch, table).await?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct HourCount {
    h: i64,
    n: u64,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

fn ch_err(e: super::ChError) -> StoreError {
    StoreError::ClickHouse(e)
}

async fn ch_hours(ch: &ClickHouse, table: &str) -> Result<HashMap<i64, u64>, StoreError> {
    let rows: Vec<HourCount> = ch
        .rows(&format!(
            "SELECT toInt64(intDiv(event_time, {HOUR_US})) AS h, count() AS n FROM {} GROUP BY h",
            ch.table(table)
        ))
        .await
        .map_err(ch_err)?;
    Ok(rows.into_iter().map(|r| (r.h, r.n)).collect())
}

/// The file's rows per hour of event time (every row has one since migration 0013).
fn duck_hours(conn: &Connection, table: &str) -> Result<Vec<(i64, u64)>, StoreError> {
    let t = age(table);
    let mut stmt = conn.prepare(&format!(
        "SELECT epoch_us({t}::TIMESTAMP) // {HOUR_US} AS h, count(*) \
         FROM {table} WHERE {t} IS NOT NULL GROUP BY h ORDER BY h"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// SQL over `table`'s rows in `[?, ?)` of event time (one hour: a range, so the scan
/// skips the other hours' row groups), in the order `read_hour` reads them.
fn hour_sql(table: &str) -> String {
    const TIMES: &str = "coalesce(timestamp, epoch_ms(created_at::TIMESTAMP)), \
        epoch_us(created_at::TIMESTAMP), epoch_us(event_time::TIMESTAMP)";
    let cols = match table {
        "user_events" => format!(
            "id::VARCHAR, user_id::VARCHAR, session_id, event, properties::VARCHAR, route, referrer, \
             user_agent, ip, visitor_id, feature, browser, os, device, referrer_domain, \
             utm_source, utm_medium, utm_campaign, {TIMES}"
        ),
        "conversions" => format!(
            "id::VARCHAR, user_id::VARCHAR, session_id, funnel, step, properties::VARCHAR, \
             visitor_id, {TIMES}"
        ),
        "performance_metrics" => format!(
            "id::VARCHAR, user_id::VARCHAR, session_id, route, user_agent, connection, ip, metric_id, \
             metric, navigation_type, device, path, attribution::VARCHAR, lcp, fid, cls, fcp, ttfb, inp, \
             rereport, {TIMES}"
        ),
        "ai_performance_metrics" => format!(
            "id::VARCHAR, request_id, endpoint, model, error, user_id::VARCHAR, ip, provider, \
             coalesce(duration, 0), ttft, cost, tokens, prompt_tokens, completion_tokens, tokens_saved, \
             coalesce(success, true), coalesce(cache_hit, false), stream, demo, {TIMES}"
        ),
        "app_errors" => "id::VARCHAR, kind, message, source, line, col, stack, route, session_id, \
             user_agent, fingerprint, status, coalesce(timestamp, epoch_ms(created_at::TIMESTAMP)), \
             epoch_us(created_at::TIMESTAMP), epoch_us(created_at::TIMESTAMP)"
            .to_string(),
        _ => format!(
            "id::VARCHAR, coalesce(query, ''), user_id::VARCHAR, ip, fingerprint, normalized_query, \
             request_id, route, source, coalesce(duration, 0), rows, coalesce(cached, false), {TIMES}"
        ),
    };
    let t = age(table);
    format!("SELECT {cols} FROM {table} WHERE {t} >= ? AND {t} < ?")
}

fn uuid(s: String) -> Uuid {
    // Ids are UUIDs in the schema; a malformed one cannot be stored there.
    Uuid::parse_str(&s).unwrap_or_default()
}

/// The rows of hour `h` whose id is not in `skip`.
fn read_hour(
    conn: &Connection,
    table: &str,
    h: i64,
    skip: &HashSet<String>,
) -> Result<Batch, StoreError> {
    let mut stmt = conn.prepare(&hour_sql(table))?;
    let mut rows = stmt.query(params![ts_param(h * HOUR_US), ts_param((h + 1) * HOUR_US)])?;
    let mut batch = match table {
        "user_events" => Batch::Events(Vec::new()),
        "conversions" => Batch::Conversions(Vec::new()),
        "performance_metrics" => Batch::Performance(Vec::new()),
        "ai_performance_metrics" => Batch::Ai(Vec::new()),
        "app_errors" => Batch::Errors(Vec::new()),
        _ => Batch::Database(Vec::new()),
    };
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if skip.contains(&id) {
            continue;
        }
        let id = uuid(id);
        // The three times close every column list (`TIMES`).
        let t = |k: usize| -> duckdb::Result<(i64, i64, Option<i64>)> {
            Ok((r.get(k)?, r.get(k + 1)?, r.get(k + 2)?))
        };
        match &mut batch {
            Batch::Events(out) => {
                let (timestamp, created_at, event_time) = t(18)?;
                out.push(EventRow {
                    id,
                    user_id: r.get(1)?,
                    session_id: r.get(2)?,
                    event: r.get(3)?,
                    properties: r.get(4)?,
                    route: r.get(5)?,
                    referrer: r.get(6)?,
                    user_agent: r.get(7)?,
                    ip: r.get(8)?,
                    visitor_id: r.get(9)?,
                    feature: r.get(10)?,
                    browser: r.get(11)?,
                    os: r.get(12)?,
                    device: r.get(13)?,
                    referrer_domain: r.get(14)?,
                    utm_source: r.get(15)?,
                    utm_medium: r.get(16)?,
                    utm_campaign: r.get(17)?,
                    timestamp,
                    created_at,
                    event_time,
                })
            }
            Batch::Conversions(out) => {
                let (timestamp, created_at, event_time) = t(7)?;
                out.push(ConversionRow {
                    id,
                    user_id: r.get(1)?,
                    session_id: r.get(2)?,
                    funnel: r.get(3)?,
                    step: r.get(4)?,
                    properties: r.get(5)?,
                    visitor_id: r.get(6)?,
                    timestamp,
                    created_at,
                    event_time,
                })
            }
            Batch::Performance(out) => {
                let (timestamp, created_at, event_time) = t(20)?;
                out.push(PerformanceRow {
                    id,
                    user_id: r.get(1)?,
                    session_id: r.get(2)?,
                    route: r.get(3)?,
                    user_agent: r.get(4)?,
                    connection: r.get(5)?,
                    ip: r.get(6)?,
                    metric_id: r.get(7)?,
                    metric: r.get(8)?,
                    navigation_type: r.get(9)?,
                    device: r.get(10)?,
                    path: r.get(11)?,
                    attribution: r.get(12)?,
                    lcp: r.get(13)?,
                    fid: r.get(14)?,
                    cls: r.get(15)?,
                    fcp: r.get(16)?,
                    ttfb: r.get(17)?,
                    inp: r.get(18)?,
                    rereport: r.get(19)?,
                    timestamp,
                    created_at,
                    event_time,
                })
            }
            Batch::Ai(out) => {
                let (timestamp, created_at, event_time) = t(19)?;
                out.push(AiRow {
                    id,
                    request_id: r.get(1)?,
                    endpoint: r.get(2)?,
                    model: r.get(3)?,
                    error: r.get(4)?,
                    user_id: r.get(5)?,
                    ip: r.get(6)?,
                    provider: r.get(7)?,
                    duration: r.get(8)?,
                    ttft: r.get(9)?,
                    cost: r.get(10)?,
                    tokens: r.get(11)?,
                    prompt_tokens: r.get(12)?,
                    completion_tokens: r.get(13)?,
                    tokens_saved: r.get(14)?,
                    success: r.get(15)?,
                    cache_hit: r.get(16)?,
                    stream: r.get(17)?,
                    demo: r.get(18)?,
                    timestamp,
                    created_at,
                    event_time,
                })
            }
            Batch::Database(out) => {
                let (timestamp, created_at, event_time) = t(12)?;
                out.push(DatabaseRow {
                    id,
                    query: r.get(1)?,
                    user_id: r.get(2)?,
                    ip: r.get(3)?,
                    fingerprint: r.get(4)?,
                    normalized_query: r.get(5)?,
                    request_id: r.get(6)?,
                    route: r.get(7)?,
                    source: r.get(8)?,
                    duration: r.get(9)?,
                    rows: r.get(10)?,
                    cached: r.get(11)?,
                    timestamp,
                    created_at,
                    event_time,
                })
            }
            Batch::Errors(out) => {
                let (timestamp, created_at, _) = t(12)?;
                let kind: String = r.get(1)?;
                out.push(ErrorRow {
                    id,
                    // The two kinds ingest writes; `kind` is a static name in the row type.
                    kind: if kind == "server" { "server" } else { "js" },
                    message: r.get(2)?,
                    source: r.get(3)?,
                    line: r.get(4)?,
                    col: r.get(5)?,
                    stack: r.get(6)?,
                    route: r.get(7)?,
                    session_id: r.get(8)?,
                    user_agent: r.get(9)?,
                    fingerprint: r.get(10)?,
                    status: r.get(11)?,
                    timestamp,
                    created_at,
                })
            }
            _ => {}
        }
    }
    Ok(batch)
}

async fn copy_table(
    store: &Store,
    ch: &ClickHouse,
    table: &'static str,
) -> Result<Copied, StoreError> {
    let hours = store.query(move |c| duck_hours(c, table)).await?;
    let theirs = ch_hours(ch, table).await?;
    let mut done = Copied {
        table,
        ..Copied::default()
    };
    for &(h, n) in &hours {
        done.rows += n;
        let have = theirs.get(&h).copied().unwrap_or(0);
        if have == n {
            done.already += n;
            continue;
        }
        let skip: HashSet<String> = if have == 0 {
            HashSet::new()
        } else {
            let ids: Vec<Id> = ch
                .rows(&format!(
                    "SELECT id FROM {} WHERE {}",
                    ch.table(table),
                    time_range("event_time", "event_at", h * HOUR_US, (h + 1) * HOUR_US)
                ))
                .await
                .map_err(ch_err)?;
            ids.into_iter().map(|i| i.id).collect()
        };
        let batch = store.query(move |c| read_hour(c, table, h, &skip)).await?;
        let sent = batch.len() as u64;
        done.copied += sent;
        done.already += n - sent.min(n);
        if sent > 0 {
            let mut body = Vec::new();
            rows::encode(&batch, &mut body)
                .map_err(|e| StoreError::Internal(format!("cannot encode rows: {e}")))?;
            ch.client
                .insert(
                    &ch.table(table),
                    &rows::format(table),
                    Bytes::from(body),
                    INSERT_SETTINGS,
                )
                .await
                .map_err(ch_err)?;
        }
    }
    let after = ch_hours(ch, table).await?;
    for &(h, n) in &hours {
        let got = after.get(&h).copied().unwrap_or(0);
        if got < n {
            return Err(StoreError::Internal(format!(
                "{table}: ClickHouse holds {got} rows of the hour from {} but the file {n}",
                super::iso_us(h * HOUR_US)
            )));
        }
        done.in_clickhouse += got;
    }
    Ok(done)
}
