//! `growth-stack migrate --to-clickhouse URL`: a DuckDB file's events, conversions, web
//! vitals, AI calls, query timings, errors, load samples and scaling recommendations
//! copied into ClickHouse, so a user who moves to the ClickHouse engine keeps their history.
//!
//! Resumable by hour of event time: an hour whose row count in ClickHouse already equals
//! the file's is skipped; any other hour is topped up with the rows whose key (`id`; a
//! sample's instance, source and time; a recommendation's time) ClickHouse does not hold yet. So a run that stopped half-way (killed, ClickHouse down) is simply
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
    RecommendationRow, SystemRow,
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
pub const TABLES: [&str; 8] = [
    "user_events",
    "conversions",
    "performance_metrics",
    "ai_performance_metrics",
    "database_performance_metrics",
    "app_errors",
    "system_metrics",
    "scaling_recommendations",
];

/// The rows' key on ClickHouse and in DuckDB (text, equal for the same row), for topping
/// up an hour with the rows ClickHouse lacks.
fn key_sql(table: &str) -> (&'static str, &'static str) {
    match table {
        "system_metrics" => (
            "concat(instance, '|', source, '|', toString(ts))",
            "instance || '|' || source || '|' || CAST(epoch_us(ts) AS VARCHAR)",
        ),
        "scaling_recommendations" => (
            "toString(created_at)",
            "CAST(epoch_us(created_at) AS VARCHAR)",
        ),
        _ => ("id", "id::VARCHAR"),
    }
}

/// A fixed name (`rows::label`) read back from the file, refused if growth-stack never
/// writes it.
fn known(v: String, column: &str) -> duckdb::Result<&'static str> {
    crate::store::label(&v).ok_or_else(|| {
        duckdb::Error::FromSqlConversionFailure(
            0,
            duckdb::types::Type::Text,
            format!("{column} = {v:?} is not one growth-stack writes").into(),
        )
    })
}

/// The DuckDB column the hours are counted by: errors have no event time and are aged by
/// their receive time, which ClickHouse keeps as their `event_time` (migration 0005).
fn duck_time(table: &str) -> &'static str {
    match table {
        "app_errors" => "created_at",
        _ => rows::time_columns(table).0,
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
    let (col, _) = rows::time_columns(table);
    let rows: Vec<HourCount> = ch
        .rows(&format!(
            "SELECT toInt64(intDiv({col}, {HOUR_US})) AS h, count() AS n FROM {} GROUP BY h",
            ch.table(table)
        ))
        .await
        .map_err(ch_err)?;
    Ok(rows.into_iter().map(|r| (r.h, r.n)).collect())
}

/// The file's rows per hour of event time (every row has one since migration 0013).
fn duck_hours(conn: &Connection, table: &str) -> Result<Vec<(i64, u64)>, StoreError> {
    let col = duck_time(table);
    let mut stmt = conn.prepare(&format!(
        "SELECT epoch_us({col}::TIMESTAMP) // {HOUR_US} AS h, count(*) \
         FROM {table} WHERE {col} IS NOT NULL GROUP BY h ORDER BY h"
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
    let key = key_sql(table).1;
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
        "system_metrics" => format!(
            "{key}, instance, source, epoch_us(ts), cpu, memory, requests_per_second, p95_latency, \
             connections, error_rate, load1, load5, load15, memory_used, memory_available, \
             memory_limit, disk_free, disk_total, net_rx_bytes, net_tx_bytes, process_rss, \
             process_cpu, process_threads, epoch_us(created_at)"
        ),
        "scaling_recommendations" => format!(
            "{key}, epoch_us(created_at), fleet, current_instances, raw_desired, desired_instances, \
             metric, value, target, urgency, reason"
        ),
        _ => format!(
            "id::VARCHAR, coalesce(query, ''), user_id::VARCHAR, ip, fingerprint, normalized_query, \
             request_id, route, source, coalesce(duration, 0), rows, coalesce(cached, false), {TIMES}"
        ),
    };
    let col = duck_time(table);
    format!("SELECT {cols} FROM {table} WHERE {col} >= ? AND {col} < ?")
}

fn uuid(s: String) -> Uuid {
    // Ids are UUIDs in the schema; a malformed one cannot be stored there.
    Uuid::parse_str(&s).unwrap_or_default()
}

/// The rows of hour `h` whose key (`key_sql`) is not in `skip`.
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
        "system_metrics" => Batch::System(Vec::new()),
        "scaling_recommendations" => Batch::Recommendations(Vec::new()),
        _ => Batch::Database(Vec::new()),
    };
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        if skip.contains(&key) {
            continue;
        }
        let id = uuid(key);
        // The three times close every column list (`TIMES`) but the scaling tables'.
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
                out.push(ErrorRow {
                    id,
                    kind: known(r.get(1)?, "kind")?,
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
            Batch::System(out) => out.push(SystemRow {
                instance: r.get(1)?,
                source: known(r.get(2)?, "source")?,
                ts: r.get(3)?,
                cpu: r.get(4)?,
                memory: r.get(5)?,
                requests_per_second: r.get(6)?,
                p95_latency: r.get(7)?,
                connections: r.get(8)?,
                error_rate: r.get(9)?,
                load1: r.get(10)?,
                load5: r.get(11)?,
                load15: r.get(12)?,
                memory_used: r.get(13)?,
                memory_available: r.get(14)?,
                memory_limit: r.get(15)?,
                disk_free: r.get(16)?,
                disk_total: r.get(17)?,
                net_rx_bytes: r.get(18)?,
                net_tx_bytes: r.get(19)?,
                process_rss: r.get(20)?,
                process_cpu: r.get(21)?,
                process_threads: r.get(22)?,
                created_at: r.get(23)?,
            }),
            Batch::Recommendations(out) => out.push(RecommendationRow {
                created_at: r.get(1)?,
                fleet: known(r.get(2)?, "fleet")?,
                current_instances: r.get(3)?,
                raw_desired: r.get(4)?,
                desired_instances: r.get(5)?,
                metric: r
                    .get::<_, Option<String>>(6)?
                    .map(|m| known(m, "metric"))
                    .transpose()?,
                value: r.get(7)?,
                target: r.get(8)?,
                urgency: known(r.get(9)?, "urgency")?,
                reason: r.get(10)?,
            }),
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
            let (col, twin) = rows::time_columns(table);
            let ids: Vec<Id> = ch
                .rows(&format!(
                    "SELECT {} AS id FROM {} WHERE {}",
                    key_sql(table).0,
                    ch.table(table),
                    time_range(col, twin, h * HOUR_US, (h + 1) * HOUR_US)
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
