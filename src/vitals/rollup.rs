//! The roll-up behind long windows over many page views: per day (of event time, as every
//! window reads), route, device and metric, counts per log bucket and rating. Rows are
//! rolled up by the hour they were received (`created_at`), as each hour ends, so a late
//! report still lands on the day it was viewed; each day is compacted when it ends. A read
//! sums the roll-up and adds the raw rows received since, so 30 days of millions of
//! samples cost a small scan.

use std::collections::HashMap;
use std::time::Duration;

use duckdb::types::Value as DbValue;
use duckdb::{params, params_from_iter, Connection};

use super::filter::{latest_since, Filter};
use super::Metric;
use crate::http::window::Window;
use crate::state::AppState;
use crate::store::buckets::{bucket_sql, Buckets};
use crate::store::{in_transaction, ts_param, Store, StoreError};

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;
/// An hour is rolled up once it ended this long ago, so every row of it is committed.
const LAG_US: i64 = 60_000_000;
/// How far back a re-report's previous report is looked for.
const LOOKBACK_US: i64 = 2 * DAY_US;

/// SQL: 0 good, 1 needs improvement, 2 poor, for the metric named by `metric`.
fn rating_sql(metric: &str, v: &str) -> String {
    let arms: Vec<String> = Metric::ALL
        .iter()
        .map(|m| {
            let (g, p) = m.thresholds();
            format!(
                "WHEN '{}' THEN (CASE WHEN {v} <= {g} THEN 0 WHEN {v} <= {p} THEN 1 ELSE 2 END)",
                m.column()
            )
        })
        .collect();
    format!("(CASE {metric} {} END)::UTINYINT", arms.join(" "))
}

/// SQL: the metric columns of a row as (name, value) pairs, one row each.
fn unnest_metrics() -> String {
    let names: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("'{}'", m.column()))
        .collect();
    let cols: Vec<&str> = Metric::ALL.iter().map(|m| m.column()).collect();
    format!(
        "unnest([{}]) AS metric, unnest([{}]) AS value",
        names.join(", "),
        cols.join(", ")
    )
}

fn floor_day(us: i64) -> i64 {
    us.div_euclid(DAY_US) * DAY_US
}

fn floor_hour(us: i64) -> i64 {
    us.div_euclid(HOUR_US) * HOUR_US
}

/// Where the roll-up ends (a whole UTC hour), if it has begun.
pub fn done_until(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        "SELECT max(epoch_us(done_until)) FROM performance_rollup_state",
        [],
        |r| r.get(0),
    )?)
}

/// Rolls up every whole hour that ended before `now_us` and is not rolled up yet, and
/// compacts each day that ends; returns how many hours it added.
pub fn roll(conn: &Connection, now_us: i64) -> Result<u32, StoreError> {
    let limit = floor_hour(now_us - LAG_US);
    let mut hour = match done_until(conn)? {
        Some(t) => t,
        None => {
            let first: Option<i64> = conn.query_row(
                "SELECT min(epoch_us(created_at::TIMESTAMP)) FROM performance_metrics",
                [],
                |r| r.get(0),
            )?;
            match first {
                Some(t) => floor_hour(t),
                None => return Ok(0),
            }
        }
    };
    let mut hours = 0;
    while hour + HOUR_US <= limit {
        let end = hour + HOUR_US;
        in_transaction::<_, StoreError>(conn, |c| {
            roll_slice(c, hour, end)?;
            if end % DAY_US == 0 {
                compact(c, end - DAY_US)?;
            }
            c.execute("DELETE FROM performance_rollup_state", [])?;
            c.execute(
                "INSERT INTO performance_rollup_state VALUES (?)",
                params![ts_param(end)],
            )?;
            Ok(())
        })?;
        hour = end;
        hours += 1;
    }
    Ok(hours)
}

/// One slice of time: +1 for the newest report of each metric instance in it, -1 for the
/// report it replaced from an earlier slice (which was counted then).
fn roll_slice(conn: &Connection, lo: i64, hi: i64) -> duckdb::Result<()> {
    let sql = format!(
        "INSERT INTO performance_rollup SELECT * FROM (
         WITH new AS (SELECT * FROM performance_metrics WHERE created_at >= ? AND created_at < ?),
         rk AS (SELECT DISTINCT metric_id, coalesce(metric, '') AS m FROM new WHERE rereport),
         sup AS (SELECT new.metric_id, coalesce(new.metric, '') AS m, arg_max(new.id, new.created_at) AS keep
                 FROM new JOIN rk ON new.metric_id = rk.metric_id AND coalesce(new.metric, '') = rk.m GROUP BY ALL),
         cur AS (SELECT 1 AS sign, new.* FROM new LEFT JOIN sup
                 ON new.metric_id = sup.metric_id AND coalesce(new.metric, '') = sup.m
                 WHERE sup.keep IS NULL OR sup.keep = new.id),
         prev AS (SELECT -1 AS sign, p.* FROM performance_metrics p
                  JOIN rk ON p.metric_id = rk.metric_id AND coalesce(p.metric, '') = rk.m
                  WHERE p.created_at >= ? AND p.created_at < ?
                  QUALIFY row_number() OVER (PARTITION BY p.metric_id, coalesce(p.metric, '')
                                             ORDER BY p.created_at DESC, p.id DESC) = 1),
         signed AS (SELECT * FROM cur UNION ALL BY NAME SELECT * FROM prev),
         long AS (SELECT date_trunc('day', event_time::TIMESTAMP) AS day, route,
                         coalesce(device, 'unknown') AS device, sign, {} FROM signed)
         SELECT day, route, device, metric, {} AS bucket, {} AS rating, sum(sign)::BIGINT AS n
         FROM long WHERE value IS NOT NULL GROUP BY ALL)",
        unnest_metrics(),
        bucket_sql("value"),
        rating_sql("metric", "value"),
    );
    conn.execute(
        &sql,
        params![
            ts_param(lo),
            ts_param(hi),
            ts_param(lo - LOOKBACK_US),
            ts_param(lo)
        ],
    )?;
    Ok(())
}

/// A finished day's hourly rows summed into one row per bucket.
fn compact(conn: &Connection, day: i64) -> duckdb::Result<()> {
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE rollup_day AS SELECT day, route, device, metric, bucket, rating, \
         sum(n)::BIGINT AS n FROM performance_rollup WHERE day = ? GROUP BY ALL HAVING sum(n) <> 0",
        params![ts_param(day)],
    )?;
    conn.execute(
        "DELETE FROM performance_rollup WHERE day = ?",
        params![ts_param(day)],
    )?;
    conn.execute_batch(
        "INSERT INTO performance_rollup SELECT * FROM rollup_day; DROP TABLE rollup_day",
    )
}

/// Rolls up whatever is due now; for `demo` and start-up.
pub async fn catch_up(store: &Store) -> Result<u32, StoreError> {
    // On ClickHouse the samples are in the cluster and reads scan them: the node's DuckDB
    // table stays empty, and a roll-up of it would only answer what nobody asks.
    if store.clickhouse().is_some() {
        return Ok(0);
    }
    store
        .maintain(|conn| roll(conn, chrono::Utc::now().timestamp_micros()))
        .await
}

/// Keeps the roll-up current in the background, every `performance.rollup_interval` s.
pub fn spawn(state: &AppState) {
    if state.store.clickhouse().is_some() {
        return;
    }
    let every = Duration::from_secs(state.config.performance.rollup_interval.max(1));
    state
        .store
        .every(every, "web vitals roll-up", |store| async move {
            let hours = catch_up(&store).await?;
            if hours > 0 {
                tracing::info!(hours, "rolled up web vitals");
            }
            Ok(())
        });
}

/// A metric's distribution: counts per bucket and per rating.
#[derive(Debug, Default, Clone)]
pub struct Hist {
    buckets: Buckets,
    ratings: [i64; 3],
}

impl Hist {
    fn add(&mut self, bucket: i16, rating: u8, n: i64) {
        self.buckets.add(bucket, n);
        if let Some(r) = self.ratings.get_mut(usize::from(rating)) {
            *r += n;
        }
    }

    pub fn merge(&mut self, other: &Hist) {
        self.buckets.merge(&other.buckets);
        for (a, b) in self.ratings.iter_mut().zip(other.ratings) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.count()
    }

    /// (bucket value, count) pairs, smallest first.
    pub fn values(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets.values()
    }

    /// (good, poor) counts.
    pub fn good_poor(&self) -> (u64, u64) {
        (self.ratings[0].max(0) as u64, self.ratings[2].max(0) as u64)
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.buckets.quantile(q)
    }
}

/// (route, device, day start in µs or 0) -> one histogram per metric, in `Metric::ALL` order.
pub type Hists = HashMap<(Option<String>, String, i64), [Hist; 6]>;

/// How finely `histograms` splits: per route × device over the window, or per day for
/// the whole site (route `None`, device "").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Groups,
    Days,
}

/// Adds rows of (route, device, t, metric, bucket, rating, n), the shape both the roll-up
/// and the raw tail are read in, to `out`.
fn add_rows(
    conn: &Connection,
    sql: &str,
    params: &[DbValue],
    out: &mut Hists,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    while let Some(r) = rows.next()? {
        let metric: String = r.get(3)?;
        if let Some(i) = Metric::ALL.iter().position(|m| m.column() == metric) {
            out.entry((r.get(0)?, r.get(1)?, r.get(2)?)).or_default()[i].add(
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            );
        }
    }
    Ok(())
}

/// Histograms over `w`: the roll-up for whole days (of event time) from the day `w.from`
/// falls in, for the rows received before `done`, then the raw rows received since
/// (newest report each) whose event time lies in `w`.
pub fn histograms(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    done: i64,
    grain: Grain,
) -> Result<Hists, StoreError> {
    let mut out: Hists = HashMap::new();
    let (filters, extra) = f.sql();
    let keys = match grain {
        Grain::Groups => "route, device, 0",
        Grain::Days => "NULL::VARCHAR, '', epoch_us(day)",
    };
    let sql = format!(
        "SELECT {keys}, metric, bucket, rating, sum(n)::BIGINT FROM performance_rollup \
         WHERE day >= ? AND day < ? AND day < ?{filters} GROUP BY ALL"
    );
    let mut p = vec![
        ts_param(floor_day(w.from_us())),
        ts_param(done),
        ts_param(w.to_us()),
    ];
    p.extend(extra);
    add_rows(conn, &sql, &p, &mut out)?;
    // The roll-up holds every row received before `done`, each on the day of its event
    // time; the tail is the rows received since, on their event time in the window.
    if done < w.to_us() {
        let (with, params) = latest_since(w, f, Some(done));
        let keys = match grain {
            Grain::Groups => "route, coalesce(device, 'unknown') AS device, 0 AS t",
            Grain::Days => {
                "NULL::VARCHAR AS route, '' AS device, epoch_us(date_trunc('day', event_time::TIMESTAMP)) AS t"
            }
        };
        let sql = format!(
            "{with}, long AS (SELECT {keys}, {} FROM v) \
             SELECT route, device, t, metric, {}, {}, count(*) FROM long WHERE value IS NOT NULL GROUP BY ALL",
            unnest_metrics(),
            bucket_sql("value"),
            rating_sql("metric", "value"),
        );
        add_rows(conn, &sql, &params, &mut out)?;
    }
    Ok(out)
}

/// Samples (LCP values) the roll-up holds for `w`'s days: decides whether to use it.
pub fn samples(conn: &Connection, w: &Window, done: i64) -> Result<u64, StoreError> {
    let n: Option<i64> = conn.query_row(
        "SELECT sum(n)::BIGINT FROM performance_rollup WHERE day >= ? AND day < ? AND metric = 'lcp'",
        params![ts_param(floor_day(w.from_us())), ts_param(done)],
        |r| r.get(0),
    )?;
    Ok(n.unwrap_or(0).max(0) as u64)
}
