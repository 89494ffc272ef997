//! The scaling reads on the ClickHouse engine: each query of `query.rs` in ClickHouse SQL,
//! over the samples every node and every app instance wrote, and the recommendations one
//! node a period recorded. They return `query.rs`'s types, filled as DuckDB fills them
//! (`store::clickhouse::fold` reads the values back as DuckDB's JSON shows them).
//!
//! Two things differ from DuckDB's SQL in more than names. Aggregates of a Nullable column
//! are written `max(if(cond, x, NULL))`, never `maxIf(x, cond)`: on 18.16 the `-If` forms
//! give 0 instead of NULL when nothing matches. The latest sample of an instance is
//! `argMax` of its values as text ('' for NULL), which is not Nullable, so a heartbeat's
//! NULLs are taken as they are, as DuckDB's join on the newest `ts` takes them. Floats are
//! sent as text (`toString`) and parsed exactly.

use serde_json::Value;

use super::hpa::InstanceNow;
use super::query::{
    Fleet, HistoryStats, HostCapacity, SystemReport, SystemStats, HOUR_US, RECOMMENDATIONS, SAMPLES,
};
use crate::http::window::{Report, Window};
use crate::store::clickhouse::fold::{count, float, json_row, Kind};
use crate::store::clickhouse::{quote, time_range, ChError, ClickHouse};
use crate::store::StoreError;

async fn rows(ch: &ClickHouse, sql: &str) -> Result<Vec<Value>, StoreError> {
    ch.rows(sql).await.map_err(StoreError::ClickHouse)
}

async fn row(ch: &ClickHouse, sql: &str) -> Result<Value, StoreError> {
    rows(ch, sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::ClickHouse(ChError::Decode("expected one row".into())))
}

/// Samples with `ts` in `[from, to)`.
fn samples_in(from_us: i64, to_us: i64) -> String {
    time_range("ts", "ts_at", from_us, to_us)
}

/// Samples with `ts` in `[from, to]`.
fn samples_through(from_us: i64, to_us: i64) -> String {
    let (from, to) = (from_us.max(0), to_us.max(0));
    format!(
        "ts >= {from} AND ts <= {to} AND ts_at >= toDateTime({}) AND ts_at <= toDateTime({})",
        from / 1_000_000,
        (to / 1_000_000).max(from / 1_000_000)
    )
}

fn i64_of(v: &Value, k: &str) -> Option<i64> {
    v[k].as_i64()
}

/// `query::fleet_now`: the latest values of every instance of the first fleet that has
/// fresh samples. `argMax(x, ts)` skips a NULL `x`, as DuckDB's `arg_max` does.
pub async fn fleet_now(
    ch: &ClickHouse,
    now_us: i64,
    stale_us: i64,
) -> Result<(Fleet, Vec<InstanceNow>), StoreError> {
    for fleet in [Fleet::Apps, Fleet::Host] {
        let sql = format!(
            "SELECT instance, toString(argMax(cpu, ts)) AS c, toString(argMax(memory, ts)) AS m, \
             toString(argMax(requests_per_second, ts)) AS rps, toString(argMax(p95_latency, ts)) AS p95, \
             argMax(connections, ts) AS conns, max(ts) AS last \
             FROM {} WHERE source = {} AND {} GROUP BY instance ORDER BY instance",
            ch.table(SAMPLES),
            quote(fleet.source()),
            // A reporter's clock may run a little ahead of ours.
            samples_through(now_us - stale_us, now_us.saturating_add(stale_us)),
        );
        let found: Vec<InstanceNow> = rows(ch, &sql)
            .await?
            .iter()
            .map(|r| InstanceNow {
                instance: r["instance"].as_str().unwrap_or_default().to_string(),
                cpu: float(r, "c"),
                memory: float(r, "m"),
                requests_per_second: float(r, "rps"),
                p95_latency: float(r, "p95"),
                connections: i64_of(r, "conns").and_then(|c| i32::try_from(c).ok()),
                age_seconds: ((now_us - i64_of(r, "last").unwrap_or(0)) as f64 / 1e6).max(0.0),
            })
            .collect();
        if !found.is_empty() {
            return Ok((fleet, found));
        }
    }
    Ok((Fleet::Apps, Vec::new()))
}

/// `query::recent_raw`.
pub async fn recent_raw(ch: &ClickHouse, since_us: i64) -> Result<Vec<u32>, StoreError> {
    let sql = format!(
        "SELECT raw_desired FROM {} WHERE created_at >= {}",
        ch.table(RECOMMENDATIONS),
        since_us.max(0)
    );
    Ok(rows(ch, &sql)
        .await?
        .iter()
        .map(|r| r["raw_desired"].as_i64().unwrap_or(0).max(0) as u32)
        .collect())
}

/// `query::hourly_demand`.
pub async fn hourly_demand(
    ch: &ClickHouse,
    fleet: Fleet,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let sql = format!(
        "SELECT h, toString(sum(c)) AS v FROM ( \
            SELECT toInt64(intDiv(ts, {HOUR_US})) AS h, instance, avg(cpu) AS c FROM {} \
            WHERE source = {} AND {} AND isNotNull(cpu) GROUP BY h, instance \
         ) GROUP BY h ORDER BY h",
        ch.table(SAMPLES),
        quote(fleet.source()),
        samples_in(super::query::first_hour(from_us), to_us),
    );
    Ok(rows(ch, &sql)
        .await?
        .iter()
        .filter_map(|r| Some((i64_of(r, "h")?, float(r, "v")?)))
        .collect())
}

/// `query::host_capacity` for the host of this node (`instance`): on ClickHouse the
/// table holds every node's host. The disk trend is `regr_slope` as its definition
/// (covariance over variance), equal to DuckDB's up to the last bits.
pub async fn host_capacity(
    ch: &ClickHouse,
    instance: &str,
    now_us: i64,
    days: i64,
) -> Result<HostCapacity, StoreError> {
    let since = now_us - days * 24 * HOUR_US;
    let has_disk = "isNotNull(disk_free)";
    let sql = format!(
        "SELECT argMax(disk_free, ts) AS free, argMax(disk_total, ts) AS total, \
         if(countIf({has_disk}) < 2 OR varPopIf(toFloat64(ts), {has_disk}) = 0, NULL, \
            toString(covarPop(toFloat64(disk_free), toFloat64(ts)) / varPopIf(toFloat64(ts), {has_disk}) * 86400e6)) AS slope, \
         argMax(memory_used, ts) AS used, argMax(memory_limit, ts) AS mem_limit, \
         toString(max(memory)) AS peak, count() AS n \
         FROM {} WHERE source = 'host' AND instance = {} AND {}",
        ch.table(SAMPLES),
        quote(instance),
        samples_through(since, now_us),
    );
    let r = row(ch, &sql).await?;
    Ok(HostCapacity {
        disk_free: i64_of(&r, "free"),
        disk_total: i64_of(&r, "total"),
        disk_free_change_per_day: float(&r, "slope"),
        memory_used: i64_of(&r, "used"),
        memory_limit: i64_of(&r, "mem_limit"),
        memory_peak_percent: float(&r, "peak"),
        samples: count(&r, "n"),
    })
}

const SERIES: &[(&str, Kind)] = &[
    ("t", Kind::Time),
    ("cpu", Kind::Float),
    ("memory", Kind::Float),
    ("instances", Kind::Same),
    ("requests_per_second", Kind::Float),
    ("p95_latency", Kind::Float),
    ("host_cpu", Kind::Float),
    ("host_memory", Kind::Float),
    ("host_requests_per_second", Kind::Float),
    ("host_p95_latency", Kind::Float),
];

const INSTANCES: &[(&str, Kind)] = &[
    ("instance", Kind::Same),
    ("source", Kind::Same),
    ("last_seen", Kind::Time),
    ("fresh", Kind::Bool),
    ("samples", Kind::Same),
    ("cpu", Kind::Float),
    ("memory", Kind::Float),
    ("requests_per_second", Kind::Float),
    ("p95_latency", Kind::Float),
    ("connections", Kind::Same),
];

/// `system_metrics`' columns as `query::system_report` lists them.
const SAMPLE_COLUMNS: &[(&str, Kind)] = &[
    ("instance", Kind::Same),
    ("source", Kind::Same),
    ("ts", Kind::Time),
    ("cpu", Kind::Float),
    ("memory", Kind::Float),
    ("requests_per_second", Kind::Float),
    ("p95_latency", Kind::Float),
    ("connections", Kind::Same),
    ("error_rate", Kind::Float),
    ("load1", Kind::Float),
    ("load5", Kind::Float),
    ("load15", Kind::Float),
    ("memory_used", Kind::Same),
    ("memory_available", Kind::Same),
    ("memory_limit", Kind::Same),
    ("disk_free", Kind::Same),
    ("disk_total", Kind::Same),
    ("net_rx_bytes", Kind::Same),
    ("net_tx_bytes", Kind::Same),
    ("process_rss", Kind::Same),
    ("process_cpu", Kind::Float),
    ("process_threads", Kind::Same),
    ("created_at", Kind::Time),
];

/// A select list of `columns`, floats as exact text.
fn select(columns: &[(&str, Kind)]) -> String {
    columns
        .iter()
        .map(|(c, k)| match k {
            Kind::Float => format!("toString({c}) AS {c}"),
            _ => (*c).to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `query::system_report`.
pub async fn system_report(
    ch: &ClickHouse,
    w: &Window,
    now_us: i64,
    stale_us: i64,
) -> Result<SystemReport, StoreError> {
    let b = w.bucket_us().max(1);
    let within = samples_in(w.from_us(), w.to_us());
    let table = ch.table(SAMPLES);
    // Per bucket and instance first (see the DuckDB twin), then per bucket.
    let of = |source: &str, agg: &str, col: &str, name: &str| {
        format!("toString({agg}(if(source = '{source}', {col}, NULL))) AS {name}")
    };
    let series_sql = format!(
        "SELECT b * {b} AS t, {}, {}, countIf(source = 'app') AS instances, {}, {}, {}, {}, {}, {} \
         FROM (SELECT intDiv(ts, {b}) AS b, source, instance, avg(cpu) AS a_cpu, \
            avg(memory) AS a_memory, avg(requests_per_second) AS a_rps, max(p95_latency) AS a_p95 \
            FROM {table} WHERE {within} GROUP BY b, source, instance) \
         GROUP BY b ORDER BY b",
        of("app", "avg", "a_cpu", "cpu"),
        of("app", "avg", "a_memory", "memory"),
        of("app", "sum", "a_rps", "requests_per_second"),
        of("app", "max", "a_p95", "p95_latency"),
        of("host", "avg", "a_cpu", "host_cpu"),
        of("host", "avg", "a_memory", "host_memory"),
        of("host", "sum", "a_rps", "host_requests_per_second"),
        of("host", "max", "a_p95", "host_p95_latency"),
    );
    let series = rows(ch, &series_sql)
        .await?
        .iter()
        .map(|r| json_row(r, SERIES))
        .collect();
    let fresh_from = (now_us - stale_us).max(0);
    // Each value as text, '' for NULL: `argMax` of a non-Nullable column keeps the newest
    // sample's NULL. (`argMax` of a tuple of them did too on one server, but came back
    // with another sample's value through a Distributed table on 18.16.)
    let newest = |col: &str| format!("argMax(ifNull(toString({col}), ''), ts) AS l_{col}");
    let value = |col: &str| format!("if(l_{col} = '', NULL, l_{col}) AS {col}");
    let instances_sql = format!(
        "SELECT instance, source, last_seen, last_seen >= {fresh_from} AS fresh, samples, \
         {}, {}, {}, {}, if(l_connections = '', NULL, toInt32OrZero(l_connections)) AS connections \
         FROM (SELECT instance, source, max(ts) AS last_seen, count() AS samples, {}, {}, {}, {}, {} \
            FROM {table} WHERE {within} GROUP BY instance, source) \
         ORDER BY source, instance LIMIT 500",
        value("cpu"),
        value("memory"),
        value("requests_per_second"),
        value("p95_latency"),
        newest("cpu"),
        newest("memory"),
        newest("requests_per_second"),
        newest("p95_latency"),
        newest("connections"),
    );
    let instances = rows(ch, &instances_sql)
        .await?
        .iter()
        .map(|r| json_row(r, INSTANCES))
        .collect();
    let total = count(
        &row(
            ch,
            &format!("SELECT count() AS n FROM {table} WHERE {within}"),
        )
        .await?,
        "n",
    );
    let rows_sql = format!(
        "SELECT {} FROM {table} WHERE {within} ORDER BY ts DESC, instance LIMIT {} OFFSET {}",
        select(SAMPLE_COLUMNS),
        w.limit,
        w.offset
    );
    let newest = rows(ch, &rows_sql)
        .await?
        .iter()
        .map(|r| json_row(r, SAMPLE_COLUMNS))
        .collect();
    Ok(w.report(series, SystemStats { instances }, newest, total))
}

const HISTORY_SERIES: &[(&str, Kind)] = &[
    ("t", Kind::Time),
    ("current_instances", Kind::Same),
    ("desired_instances", Kind::Same),
    ("raw_desired", Kind::Same),
];

const RECOMMENDATION_COLUMNS: &[(&str, Kind)] = &[
    ("created_at", Kind::Time),
    ("fleet", Kind::Same),
    ("current_instances", Kind::Same),
    ("raw_desired", Kind::Same),
    ("desired_instances", Kind::Same),
    ("metric", Kind::Same),
    ("value", Kind::Float),
    ("target", Kind::Float),
    ("urgency", Kind::Same),
    ("reason", Kind::Same),
];

/// `query::history`. The count of changes, a window function in DuckDB, is the pairs of
/// neighbours that differ in the window's recommendations sorted by time.
pub async fn history(ch: &ClickHouse, w: &Window) -> Result<Report<HistoryStats>, StoreError> {
    let b = w.bucket_us().max(1);
    let table = ch.table(RECOMMENDATIONS);
    let within = time_range("created_at", "created_on", w.from_us(), w.to_us());
    let series = rows(
        ch,
        &format!(
            "SELECT intDiv(created_at, {b}) * {b} AS t, max(current_instances) AS current_instances, \
             max(desired_instances) AS desired_instances, max(raw_desired) AS raw_desired \
             FROM {table} WHERE {within} GROUP BY t ORDER BY t"
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, HISTORY_SERIES))
    .collect();
    let counted = row(
        ch,
        &format!(
            "SELECT n, arrayCount((x, y) -> x != y, arrayPopFront(d), arrayPopBack(d)) AS changes \
             FROM (SELECT count() AS n, \
                arrayMap(p -> tupleElement(p, 2), arraySort(groupArray((created_at, desired_instances)))) AS d \
                FROM {table} WHERE {within})"
        ),
    )
    .await?;
    let newest = rows(
        ch,
        &format!(
            "SELECT {} FROM {table} WHERE {within} ORDER BY created_at DESC LIMIT {} OFFSET {}",
            select(RECOMMENDATION_COLUMNS),
            w.limit,
            w.offset
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, RECOMMENDATION_COLUMNS))
    .collect();
    Ok(w.report(
        series,
        HistoryStats {
            changes: count(&counted, "changes"),
        },
        newest,
        count(&counted, "n"),
    ))
}
