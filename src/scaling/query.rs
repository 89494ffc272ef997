//! DuckDB SQL over `system_metrics` and `scaling_recommendations`: the fleet's fresh
//! samples, the window's recommendations, hourly demand for the forecast, disk growth, and
//! the reads behind `GET /api/analytics/system` and the history; and the result types
//! both engines fill (the ClickHouse twin is `clickhouse.rs`, the choice `reads.rs`).
//! Times are the samples' own (`ts`).

use duckdb::{params, Connection};
use serde::Serialize;

use super::hpa::InstanceNow;
use crate::http::window::{Report, Window};
use crate::store::{count_between, query_json, ts_param, JsonRow, StoreError};

pub(super) const SAMPLES: &str = "system_metrics";
pub(super) const RECOMMENDATIONS: &str = "scaling_recommendations";
pub(super) const HOUR_US: i64 = 3_600_000_000;

/// Whose load a recommendation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fleet {
    /// The app instances that report to `POST /api/analytics/system`.
    Apps,
    /// This growth-stack host alone (no app reports yet).
    Host,
}

impl Fleet {
    pub fn name(self) -> &'static str {
        match self {
            Fleet::Apps => "apps",
            Fleet::Host => "host",
        }
    }

    pub(super) fn source(self) -> &'static str {
        match self {
            Fleet::Apps => "app",
            Fleet::Host => "host",
        }
    }
}

/// The latest sample of every instance seen in `[now - stale, now]`: app instances when
/// any reported, else this host. An instance silent for longer has stopped counting.
pub fn fleet_now(
    conn: &Connection,
    now_us: i64,
    stale_us: i64,
) -> Result<(Fleet, Vec<InstanceNow>), StoreError> {
    for fleet in [Fleet::Apps, Fleet::Host] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT instance, arg_max(cpu, ts), arg_max(memory, ts), arg_max(requests_per_second, ts), \
             arg_max(p95_latency, ts), arg_max(connections, ts), epoch_us(max(ts)) \
             FROM {SAMPLES} WHERE source = ? AND ts >= ? AND ts <= ? \
             GROUP BY instance ORDER BY instance"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    fleet.source(),
                    ts_param(now_us - stale_us),
                    // A reporter's clock may run a little ahead of ours.
                    ts_param(now_us + stale_us)
                ],
                |r| {
                    let last: i64 = r.get(6)?;
                    Ok(InstanceNow {
                        instance: r.get(0)?,
                        cpu: r.get(1)?,
                        memory: r.get(2)?,
                        requests_per_second: r.get(3)?,
                        p95_latency: r.get(4)?,
                        connections: r.get(5)?,
                        age_seconds: ((now_us - last) as f64 / 1e6).max(0.0),
                    })
                },
            )?
            .collect::<duckdb::Result<Vec<_>>>()?;
        if !rows.is_empty() {
            return Ok((fleet, rows));
        }
    }
    Ok((Fleet::Apps, Vec::new()))
}

/// The recommendations (clamped, before stabilisation) recorded since `since_us`.
pub fn recent_raw(conn: &Connection, since_us: i64) -> Result<Vec<u32>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT raw_desired FROM {RECOMMENDATIONS} WHERE created_at >= ?"
    ))?;
    let rows = stmt
        .query_map(params![ts_param(since_us)], |r| r.get::<_, i32>(0))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|v| v.max(0) as u32).collect())
}

/// The start of the hour holding `from_us`: where the demand series begins.
pub fn first_hour(from_us: i64) -> i64 {
    from_us.div_euclid(HOUR_US) * HOUR_US
}

/// Hourly fleet demand over `[first_hour(from), to)`: per hour (its number since the
/// epoch), the sum over instances of each one's average CPU, i.e. load in "percent of one
/// instance"; hours without a sample are absent.
pub fn hourly_demand(
    conn: &Connection,
    fleet: Fleet,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT h, sum(c) FROM ( \
            SELECT epoch_us(ts) // {HOUR_US} AS h, instance, avg(cpu) AS c FROM {SAMPLES} \
            WHERE source = ? AND ts >= ? AND ts < ? AND cpu IS NOT NULL GROUP BY 1, 2 \
         ) GROUP BY h ORDER BY h"
    ))?;
    let rows = stmt.query_map(
        params![
            fleet.source(),
            ts_param(first_hour(from_us)),
            ts_param(to_us)
        ],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
    )?;
    Ok(rows.collect::<duckdb::Result<Vec<_>>>()?)
}

/// `hourly_demand`'s rows as one value per hour from `first_hour(from)` to `to`, NaN where
/// an hour has no sample: (first hour start in microseconds, the values).
pub fn demand_series(from_us: i64, to_us: i64, rows: &[(i64, f64)]) -> (i64, Vec<f64>) {
    let first = first_hour(from_us);
    let hours = usize::try_from((to_us - first + HOUR_US - 1) / HOUR_US).unwrap_or(0);
    let mut ys = vec![f64::NAN; hours];
    for &(h, v) in rows {
        let i = h - first / HOUR_US;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| ys.get_mut(i)) {
            *slot = v;
        }
    }
    (first, ys)
}

/// This host's disk and memory over the last `days`: what the capacity forecast needs.
#[derive(Debug, Default, Serialize)]
pub struct HostCapacity {
    pub disk_free: Option<i64>,
    pub disk_total: Option<i64>,
    /// Bytes per day the free space changes (negative: filling up).
    pub disk_free_change_per_day: Option<f64>,
    pub memory_used: Option<i64>,
    pub memory_limit: Option<i64>,
    /// Highest memory use of the period, percent of the limit.
    pub memory_peak_percent: Option<f64>,
    pub samples: u64,
}

pub fn host_capacity(
    conn: &Connection,
    now_us: i64,
    days: i64,
) -> Result<HostCapacity, StoreError> {
    let since = now_us - days * 24 * HOUR_US;
    let cap = conn.query_row(
        &format!(
            "SELECT arg_max(disk_free, ts), arg_max(disk_total, ts), \
             regr_slope(disk_free, epoch_us(ts)) * 86400e6, \
             arg_max(memory_used, ts), arg_max(memory_limit, ts), max(memory), count(*) \
             FROM {SAMPLES} WHERE source = 'host' AND ts >= ? AND ts <= ?"
        ),
        params![ts_param(since), ts_param(now_us)],
        |r| {
            Ok(HostCapacity {
                disk_free: r.get(0)?,
                disk_total: r.get(1)?,
                disk_free_change_per_day: r.get(2)?,
                memory_used: r.get(3)?,
                memory_limit: r.get(4)?,
                memory_peak_percent: r.get(5)?,
                samples: r.get(6)?,
            })
        },
    )?;
    Ok(cap)
}

#[derive(Debug, Serialize)]
pub struct SystemStats {
    /// Every instance seen in the window with its latest sample, apps first.
    pub instances: Vec<JsonRow>,
}

pub type SystemReport = Report<SystemStats>;

/// `GET /api/analytics/system`: per bucket, the app fleet's average CPU and memory, its
/// instance count and requests, and this host's CPU and memory; the instances; newest rows.
///
/// Each bucket is averaged per instance first and then across instances (so an instance
/// that reports more often does not weigh more, and the fleet's requests are the sum of
/// its instances'); grouping by instance before the bucket also spares DuckDB a
/// `count(DISTINCT)`, which made a 30-day read of 50 instances three times slower.
pub fn system_report(
    conn: &Connection,
    w: &Window,
    now_us: i64,
    stale_us: i64,
) -> Result<SystemReport, StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    let bucket = w.bucket_us();
    let series = query_json(
        conn,
        &format!(
            "SELECT make_timestamp(b * {bucket}) AS t, \
             avg(cpu) FILTER (WHERE source = 'app') AS cpu, \
             avg(memory) FILTER (WHERE source = 'app') AS memory, \
             count(*) FILTER (WHERE source = 'app') AS instances, \
             sum(rps) FILTER (WHERE source = 'app') AS requests_per_second, \
             max(p95) FILTER (WHERE source = 'app') AS p95_latency, \
             avg(cpu) FILTER (WHERE source = 'host') AS host_cpu, \
             avg(memory) FILTER (WHERE source = 'host') AS host_memory, \
             sum(rps) FILTER (WHERE source = 'host') AS host_requests_per_second, \
             max(p95) FILTER (WHERE source = 'host') AS host_p95_latency \
             FROM (SELECT epoch_us(ts) // {bucket} AS b, source, instance, avg(cpu) AS cpu, \
                avg(memory) AS memory, avg(requests_per_second) AS rps, max(p95_latency) AS p95 \
                FROM {SAMPLES} WHERE ts >= ? AND ts < ? GROUP BY ALL) \
             GROUP BY b ORDER BY b"
        ),
        params![from.clone(), to.clone()],
        &[],
    )?;
    // The latest sample of each instance by a join on its newest `ts`: far cheaper over
    // millions of rows than one `arg_max` per column.
    let instances = query_json(
        conn,
        &format!(
            "WITH last AS ( \
                SELECT instance, source, max(ts) AS ts, count(*) AS samples FROM {SAMPLES} \
                WHERE ts >= ? AND ts < ? GROUP BY instance, source) \
             SELECT l.instance, l.source, l.ts AS last_seen, (epoch_us(l.ts) >= ?) AS fresh, \
                l.samples, any_value(m.cpu) AS cpu, any_value(m.memory) AS memory, \
                any_value(m.requests_per_second) AS requests_per_second, \
                any_value(m.p95_latency) AS p95_latency, any_value(m.connections) AS connections \
             FROM last l JOIN {SAMPLES} m \
                ON m.instance = l.instance AND m.source = l.source AND m.ts = l.ts \
             GROUP BY l.instance, l.source, l.ts, l.samples \
             ORDER BY l.source, l.instance LIMIT 500"
        ),
        params![from.clone(), to.clone(), now_us - stale_us],
        &[],
    )?;
    let total = count_between(conn, SAMPLES, "ts", w.from_us(), w.to_us())?;
    let rows = query_json(
        conn,
        &format!(
            "SELECT instance, source, ts, cpu, memory, requests_per_second, p95_latency, \
             connections, error_rate, load1, load5, load15, memory_used, memory_available, \
             memory_limit, disk_free, disk_total, net_rx_bytes, net_tx_bytes, process_rss, \
             process_cpu, process_threads, created_at \
             FROM {SAMPLES} WHERE ts >= ? AND ts < ? ORDER BY ts DESC, instance LIMIT ? OFFSET ?"
        ),
        params![from, to, w.limit, w.offset],
        &[],
    )?;
    Ok(w.report(series, SystemStats { instances }, rows, total))
}

/// `GET /api/scaling/history`: recommendations in the window, newest first.
pub fn history(conn: &Connection, w: &Window) -> Result<Report<HistoryStats>, StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    let bucket = w.bucket_us();
    let series = query_json(
        conn,
        &format!(
            "SELECT make_timestamp((epoch_us(created_at) // {bucket}) * {bucket}) AS t, \
             max(current_instances) AS current_instances, max(desired_instances) AS desired_instances, \
             max(raw_desired) AS raw_desired \
             FROM {RECOMMENDATIONS} WHERE created_at >= ? AND created_at < ? GROUP BY 1 ORDER BY 1"
        ),
        params![from.clone(), to.clone()],
        &[],
    )?;
    let total = count_between(conn, RECOMMENDATIONS, "created_at", w.from_us(), w.to_us())?;
    let changes: u64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM (SELECT desired_instances, lag(desired_instances) OVER (ORDER BY created_at) AS prev \
             FROM {RECOMMENDATIONS} WHERE created_at >= ? AND created_at < ?) WHERE prev IS NOT NULL AND prev <> desired_instances"
        ),
        params![from.clone(), to.clone()],
        |r| r.get(0),
    )?;
    let rows = query_json(
        conn,
        &format!(
            "SELECT created_at, fleet, current_instances, raw_desired, desired_instances, metric, \
             value, target, urgency, reason FROM {RECOMMENDATIONS} \
             WHERE created_at >= ? AND created_at < ? ORDER BY created_at DESC LIMIT ? OFFSET ?"
        ),
        params![from, to, w.limit, w.offset],
        &[],
    )?;
    Ok(w.report(series, HistoryStats { changes }, rows, total))
}

#[derive(Debug, Serialize)]
pub struct HistoryStats {
    /// How many times the recommended count changed in the window.
    pub changes: u64,
}

/// Seconds (a setting) as microseconds, saturating.
pub fn seconds_us(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}
