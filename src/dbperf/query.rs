//! Reads over `database_performance_metrics`: latency, slow-query rate, cache hits, slowest queries.

use duckdb::{params, Connection};
use serde::Serialize;

use crate::http::window::{Report, Window};
use crate::store::timings::{share, Timings};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

pub(super) const TABLE: &str = "database_performance_metrics";
const COLUMNS: &str =
    "id::VARCHAR AS id, query, duration, rows, cached, user_id::VARCHAR AS user_id, \
    ip, timestamp, created_at, event_time, fingerprint, normalized_query, request_id, route, source";
pub(super) const TOP_QUERIES: u32 = 10;

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    /// Slowest by average first; one row per fingerprint (its normalised text as `query`).
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
    /// The figures read from log buckets (within 2%), as paths into the overview.
    #[serde(skip)]
    pub estimated: &'static [&'static str],
}

/// Query timings in the timing roll-up behind long windows (`failed` has no meaning here).
pub static TIMINGS: Timings = Timings {
    stream: 2,
    table: TABLE,
    failed: "false",
    hit: "cached",
    tokens: "0",
};

pub async fn headline(
    store: &Store,
    window: Window,
    slow_threshold: f64,
) -> Result<Headline, StoreError> {
    store
        .query(move |conn| {
            if let Some(s) = TIMINGS.long_window(conn, window.from_us(), window.to_us())? {
                let slow = s.durations.count_above(slow_threshold);
                return Ok(Headline {
                    queries: s.calls,
                    slow,
                    slow_rate: share(slow, s.calls),
                    p95_duration: s.durations.quantile(0.95),
                    slow_threshold,
                    estimated: &[
                        "database.slow",
                        "database.slow_rate",
                        "database.p95_duration",
                    ],
                });
            }
            Ok(Headline::of(&totals(conn, &window, slow_threshold)?))
        })
        .await
}

impl Headline {
    /// The headline of a window's exact totals (short windows, and ClickHouse).
    pub(super) fn of(t: &Totals) -> Headline {
        Headline {
            queries: t.queries,
            slow: t.slow,
            slow_rate: t.slow_rate,
            p95_duration: t.p95_duration,
            slow_threshold: t.slow_threshold,
            estimated: &[],
        }
    }
}

fn totals(conn: &Connection, w: &Window, slow: f64) -> Result<Totals, StoreError> {
    Ok(conn.query_row(
        &format!(
            // One quantile state for both percentiles: on a month of timings each state
            // holds every duration, and two of them ran the default memory limit out.
            "SELECT n, a, q[1], q[2], slow, slow_rate, cached, hit_rate FROM (\
             SELECT count(*) AS n, avg(duration) AS a, quantile_cont(duration, [0.75, 0.95]) AS q, \
             count(*) FILTER (WHERE duration > ?) AS slow, avg((duration > ?)::DOUBLE) AS slow_rate, \
             count(*) FILTER (WHERE cached) AS cached, avg(cached::DOUBLE) AS hit_rate \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ?)"
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
            "SELECT any_value({FP_TEXT}) AS query, {FP} AS fingerprint, count(*) AS calls, \
             avg(duration) AS avg_duration, max(duration) AS max_duration, \
             quantile_cont(duration, 0.75) AS p75_duration, avg(cached::DOUBLE) AS cache_hit_rate \
             FROM {TABLE} WHERE event_time >= ? AND event_time < ? \
             GROUP BY 2 ORDER BY avg_duration DESC, 2 LIMIT ?"
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
        &w.span(),
    )?;
    let rows = newest_rows(conn, TABLE, COLUMNS, &[], &w.span())?;
    Ok(report(w, totals, slowest, series, rows))
}

/// The report of either engine's parts; its rows are paged over all the window's timings.
pub(super) fn report(
    w: &Window,
    totals: Totals,
    slowest: Vec<JsonRow>,
    series: Vec<JsonRow>,
    rows: Vec<JsonRow>,
) -> Summary {
    let total = totals.queries;
    w.report(series, Stats { totals, slowest }, rows, total)
}

/// A reported row's fingerprint; rows stored before fingerprints existed group by text.
const FP: &str = "coalesce(fingerprint, 'text:' || md5(query))";
const FP_TEXT: &str = "coalesce(normalized_query, query)";

/// How the fingerprints table is ordered (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Total time: what to fix first.
    #[default]
    Total,
    Mean,
    Calls,
    P95,
    Max,
    Slow,
}

impl SortBy {
    pub const NAMES: [&'static str; 6] = ["total", "mean", "calls", "p95", "max", "slow"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<SortBy> {
        Some(match s {
            "total" => SortBy::Total,
            "mean" => SortBy::Mean,
            "calls" => SortBy::Calls,
            "p95" => SortBy::P95,
            "max" => SortBy::Max,
            "slow" => SortBy::Slow,
            _ => return None,
        })
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            SortBy::Total => "total_ms",
            SortBy::Mean => "mean_ms",
            SortBy::Calls => "calls",
            SortBy::P95 => "p95_ms",
            SortBy::Max => "max_ms",
            SortBy::Slow => "slow",
        }
    }
}

/// PgHero's rule for a slow query: at least this many calls...
pub const PGHERO_MIN_CALLS: u64 = 100;
/// ...and at least this mean, in milliseconds.
pub const PGHERO_MIN_MEAN_MS: f64 = 20.0;

/// `GET /api/analytics/database-performance/queries`.
#[derive(Debug, Serialize)]
pub struct Fingerprints {
    pub range: crate::http::window::WindowJson,
    pub bucket_seconds: i64,
    pub sort: &'static str,
    pub totals: FingerprintTotals,
    /// The rules a query is slow by: the guide's threshold and PgHero's.
    pub slow_rules: SlowRules,
    pub queries: Vec<FingerprintStats>,
    pub page: crate::http::window::Page,
    /// With `database.url`: `pg_stat_statements` over the window, most time first.
    pub postgres: Vec<PgStats>,
}

#[derive(Debug, Serialize)]
pub struct FingerprintTotals {
    pub queries: u64,
    pub fingerprints: u64,
    /// Milliseconds of all reported queries.
    pub total_ms: f64,
    /// Fingerprints slow by the guide's threshold (mean above it) and by PgHero's rule.
    pub slow_by_threshold: u64,
    pub slow_by_pghero: u64,
}

#[derive(Debug, Serialize)]
pub struct SlowRules {
    /// `database.slow_query_threshold`, milliseconds: a call above it is slow.
    pub threshold_ms: f64,
    pub pghero_min_calls: u64,
    pub pghero_min_mean_ms: f64,
}

/// One fingerprint's statistics over the window, in the manner of pg_stat_statements.
#[derive(Debug, Serialize)]
pub struct FingerprintStats {
    pub fingerprint: String,
    /// The normalised text ($n for literals).
    pub query: String,
    pub calls: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub stddev_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rows: i64,
    pub cache_hit_rate: f64,
    /// This fingerprint's share of all query time in the window.
    pub share: f64,
    pub first_seen: String,
    pub last_seen: String,
    /// Calls above the threshold, and their share of the calls.
    pub slow: u64,
    pub slow_rate: f64,
    /// Mean above the guide's threshold.
    pub slow_by_threshold: bool,
    /// At least 100 calls and a mean of at least 20 ms.
    pub slow_by_pghero: bool,
    /// Calls and total milliseconds per chart bucket, oldest first (empty buckets absent).
    pub series: Vec<SeriesPoint>,
    /// Where the calls come from (the `source` sent with them), most calls first.
    pub sources: Vec<String>,
    /// The same fingerprint in `pg_stat_statements`, when polled.
    pub postgres: Option<PgStats>,
}

#[derive(Debug, Serialize)]
pub struct SeriesPoint {
    pub t: String,
    pub calls: u64,
    pub total_ms: f64,
}

pub async fn fingerprints(
    store: &Store,
    window: Window,
    slow: f64,
    sort: SortBy,
) -> Result<Fingerprints, StoreError> {
    store
        .query(move |conn| fingerprints_sync(conn, &window, slow, sort))
        .await
}

fn micros_to_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One fingerprint's aggregates as either engine reads them, before the rules apply.
pub(super) struct FingerprintRow {
    pub fingerprint: String,
    pub query: String,
    pub calls: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub stddev_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rows: i64,
    pub cache_hit_rate: f64,
    pub first_us: i64,
    pub last_us: i64,
    /// Calls above the threshold.
    pub slow: u64,
}

/// The window's totals over all fingerprints (not just the page).
pub(super) struct FingerprintSums {
    pub queries: u64,
    pub total_ms: f64,
    pub fingerprints: u64,
    pub slow_by_threshold: u64,
    pub slow_by_pghero: u64,
}

impl FingerprintRow {
    /// Its statistics with the share of all time and the slow rules applied.
    fn stats(self, all_ms: f64, slow: f64) -> FingerprintStats {
        let FingerprintRow { calls, mean_ms, .. } = self;
        FingerprintStats {
            share: if all_ms > 0.0 {
                self.total_ms / all_ms
            } else {
                0.0
            },
            slow_rate: if calls > 0 {
                self.slow as f64 / calls as f64
            } else {
                0.0
            },
            slow_by_threshold: mean_ms > slow,
            slow_by_pghero: calls >= PGHERO_MIN_CALLS && mean_ms >= PGHERO_MIN_MEAN_MS,
            first_seen: micros_to_text(self.first_us),
            last_seen: micros_to_text(self.last_us),
            fingerprint: self.fingerprint,
            query: self.query,
            calls,
            total_ms: self.total_ms,
            mean_ms,
            min_ms: self.min_ms,
            max_ms: self.max_ms,
            stddev_ms: self.stddev_ms,
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
            rows: self.rows,
            cache_hit_rate: self.cache_hit_rate,
            slow: self.slow,
            series: Vec::new(),
            sources: Vec::new(),
            postgres: None,
        }
    }
}

/// The report of either engine's parts: `page` in order, with each fingerprint's chart
/// points (`(fingerprint, bucket µs, calls, ms)`, oldest first) and sources (most calls
/// first; at most five kept). Points and sources of fingerprints off the page are dropped.
pub(super) fn fingerprints_report(
    w: &Window,
    slow: f64,
    sort: SortBy,
    sums: FingerprintSums,
    page: Vec<FingerprintRow>,
    points: impl IntoIterator<Item = (String, i64, u64, f64)>,
    sources: impl IntoIterator<Item = (String, String)>,
) -> Fingerprints {
    let mut queries: Vec<FingerprintStats> = page
        .into_iter()
        .map(|r| r.stats(sums.total_ms, slow))
        .collect();
    let at: std::collections::HashMap<String, usize> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| (q.fingerprint.clone(), i))
        .collect();
    for (fp, t, calls, total_ms) in points {
        if let Some(&i) = at.get(&fp) {
            queries[i].series.push(SeriesPoint {
                t: micros_to_text(t),
                calls,
                total_ms,
            });
        }
    }
    for (fp, source) in sources {
        if let Some(&i) = at.get(&fp) {
            if queries[i].sources.len() < 5 {
                queries[i].sources.push(source);
            }
        }
    }
    Fingerprints {
        range: w.json(),
        bucket_seconds: w.bucket_seconds(),
        sort: sort.name(),
        totals: FingerprintTotals {
            queries: sums.queries,
            fingerprints: sums.fingerprints,
            total_ms: sums.total_ms,
            slow_by_threshold: sums.slow_by_threshold,
            slow_by_pghero: sums.slow_by_pghero,
        },
        slow_rules: SlowRules {
            threshold_ms: slow,
            pghero_min_calls: PGHERO_MIN_CALLS,
            pghero_min_mean_ms: PGHERO_MIN_MEAN_MS,
        },
        queries,
        page: crate::http::window::Page {
            limit: w.limit,
            offset: w.offset,
            total: sums.fingerprints,
        },
        postgres: Vec::new(),
    }
}

fn fingerprints_sync(
    conn: &Connection,
    w: &Window,
    slow: f64,
    sort: SortBy,
) -> Result<Fingerprints, StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    let base = format!(
        "WITH w AS (SELECT {FP} AS fp, {FP_TEXT} AS nq, duration, rows, cached, source, \
           epoch_us(event_time::TIMESTAMP) AS us FROM {TABLE} WHERE event_time >= ? AND event_time < ?), \
         g AS (SELECT fp, any_value(nq) AS query, count(*) AS calls, sum(duration) AS total_ms, \
           avg(duration) AS mean_ms, min(duration) AS min_ms, max(duration) AS max_ms, \
           coalesce(stddev_pop(duration), 0) AS stddev_ms, quantile_cont(duration, 0.5) AS p50_ms, \
           quantile_cont(duration, 0.95) AS p95_ms, quantile_cont(duration, 0.99) AS p99_ms, \
           coalesce(sum(rows), 0)::BIGINT AS rows, coalesce(avg(cached::DOUBLE), 0) AS cache_hit_rate, \
           min(us) AS first_us, max(us) AS last_us, count(*) FILTER (WHERE duration > ?) AS slow \
           FROM w GROUP BY fp)"
    );
    let sums = conn.query_row(
        &format!(
            "{base} SELECT coalesce(sum(calls), 0)::UBIGINT, coalesce(sum(total_ms), 0), count(*), \
             count(*) FILTER (WHERE mean_ms > ?), \
             count(*) FILTER (WHERE calls >= ? AND mean_ms >= ?) FROM g"
        ),
        params![
            from.clone(),
            to.clone(),
            slow,
            slow,
            PGHERO_MIN_CALLS,
            PGHERO_MIN_MEAN_MS
        ],
        |r| {
            Ok(FingerprintSums {
                queries: r.get(0)?,
                total_ms: r.get(1)?,
                fingerprints: r.get(2)?,
                slow_by_threshold: r.get(3)?,
                slow_by_pghero: r.get(4)?,
            })
        },
    )?;
    let mut stmt = conn.prepare(&format!(
        "{base} SELECT fp, query, calls, total_ms, mean_ms, min_ms, max_ms, stddev_ms, p50_ms, p95_ms, \
         p99_ms, rows, cache_hit_rate, first_us, last_us, slow FROM g \
         ORDER BY {} DESC, fp LIMIT ? OFFSET ?",
        sort.column()
    ))?;
    let page: Vec<FingerprintRow> = stmt
        .query_map(
            params![from.clone(), to.clone(), slow, w.limit, w.offset],
            |r| {
                Ok(FingerprintRow {
                    fingerprint: r.get(0)?,
                    query: r.get(1)?,
                    calls: r.get(2)?,
                    total_ms: r.get(3)?,
                    mean_ms: r.get(4)?,
                    min_ms: r.get(5)?,
                    max_ms: r.get(6)?,
                    stddev_ms: r.get(7)?,
                    p50_ms: r.get(8)?,
                    p95_ms: r.get(9)?,
                    p99_ms: r.get(10)?,
                    rows: r.get(11)?,
                    cache_hit_rate: r.get(12)?,
                    first_us: r.get(13)?,
                    last_us: r.get(14)?,
                    slow: r.get(15)?,
                })
            },
        )?
        .collect::<duckdb::Result<_>>()?;
    let (mut points, mut sources) = (Vec::new(), Vec::new());
    if !page.is_empty() {
        // Every fingerprint's buckets in one pass; those on this page are kept.
        let bucket = w.bucket_us().max(1);
        let mut stmt = conn.prepare(&format!(
            "SELECT {FP} AS fp, (epoch_us(event_time::TIMESTAMP) // {bucket}) * {bucket} AS t, \
             count(*), sum(duration) FROM {TABLE} \
             WHERE event_time >= ? AND event_time < ? GROUP BY 1, 2 ORDER BY 1, 2"
        ))?;
        points = stmt
            .query_map(params![from.clone(), to.clone()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<duckdb::Result<_>>()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {FP} AS fp, source, count(*) AS n FROM {TABLE} \
             WHERE event_time >= ? AND event_time < ? AND source IS NOT NULL \
             GROUP BY 1, 2 ORDER BY 1, n DESC, 2"
        ))?;
        sources = stmt
            .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<duckdb::Result<_>>()?;
    }
    Ok(fingerprints_report(
        w, slow, sort, sums, page, points, sources,
    ))
}

/// Sentry's N+1 rule: the same fingerprint at least this many times in one request...
pub const N_PLUS_ONE_MIN_CALLS: u64 = 5;
/// ...taking more than this many milliseconds in all.
pub const N_PLUS_ONE_MIN_MS: f64 = 50.0;

/// `GET /api/analytics/database-performance/n-plus-one`.
#[derive(Debug, Serialize)]
pub struct NPlusOne {
    pub range: crate::http::window::WindowJson,
    pub rule: NPlusOneRule,
    /// Per fingerprint: how many requests repeat it and the time lost, most time first.
    pub queries: Vec<NPlusOneQuery>,
    /// Each request that repeated a query, most time first.
    pub findings: Vec<NPlusOneFinding>,
    pub page: crate::http::window::Page,
}

#[derive(Debug, Serialize)]
pub struct NPlusOneRule {
    pub min_calls: u64,
    pub min_total_ms: f64,
    /// Without `request_id`, one user (or IP) within one second counts as one request.
    pub session_window_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct NPlusOneQuery {
    pub fingerprint: String,
    pub query: String,
    pub requests: u64,
    pub calls: u64,
    pub total_ms: f64,
    /// What batching the calls into one would save: the total less one call's mean.
    pub lost_ms: f64,
    pub routes: Vec<String>,
    pub sources: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NPlusOneFinding {
    pub fingerprint: String,
    pub query: String,
    /// The request id, or `session:<user or ip>@<second>` without one.
    pub request: String,
    /// `request` (a request_id was sent) or `session` (grouped by user within 1 s).
    pub kind: &'static str,
    pub route: Option<String>,
    pub source: Option<String>,
    pub count: u64,
    pub total_ms: f64,
    pub lost_ms: f64,
    pub at: String,
}

pub async fn n_plus_one(store: &Store, window: Window) -> Result<NPlusOne, StoreError> {
    store
        .query(move |conn| n_plus_one_sync(conn, &window))
        .await
}

fn n_plus_one_sync(conn: &Connection, w: &Window) -> Result<NPlusOne, StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    let base = format!(
        "WITH w AS (SELECT {FP} AS fp, {FP_TEXT} AS nq, duration, route, source, event_time, \
           CASE WHEN request_id IS NOT NULL THEN request_id \
                WHEN coalesce(user_id, ip) IS NOT NULL THEN 'session:' || coalesce(user_id, ip) || '@' || \
                  (epoch_ms(event_time::TIMESTAMP) // 1000)::VARCHAR END AS req, \
           request_id IS NOT NULL AS by_request \
           FROM {TABLE} WHERE event_time >= ? AND event_time < ?), \
         f AS (SELECT fp, req, any_value(nq) AS query, bool_or(by_request) AS by_request, \
           mode(route) AS route, mode(source) AS source, count(*) AS n, sum(duration) AS total, \
           min(epoch_us(event_time::TIMESTAMP)) AS at_us \
           FROM w WHERE req IS NOT NULL GROUP BY fp, req \
           HAVING count(*) >= ? AND sum(duration) > ?)"
    );
    let total: u64 = conn.query_row(
        &format!("{base} SELECT count(*) FROM f"),
        params![
            from.clone(),
            to.clone(),
            N_PLUS_ONE_MIN_CALLS,
            N_PLUS_ONE_MIN_MS
        ],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "{base} SELECT fp, any_value(query), count(*), sum(n)::UBIGINT, sum(total), \
         sum(total - total / n), string_agg(DISTINCT route, chr(31)), \
         string_agg(DISTINCT source, chr(31)) \
         FROM f GROUP BY fp ORDER BY 6 DESC, fp LIMIT 100"
    ))?;
    let queries = stmt
        .query_map(
            params![
                from.clone(),
                to.clone(),
                N_PLUS_ONE_MIN_CALLS,
                N_PLUS_ONE_MIN_MS
            ],
            |r| {
                Ok(NPlusOneQuery {
                    fingerprint: r.get(0)?,
                    query: r.get(1)?,
                    requests: r.get(2)?,
                    calls: r.get(3)?,
                    total_ms: r.get(4)?,
                    lost_ms: r.get(5)?,
                    routes: split_list(r.get(6)?),
                    sources: split_list(r.get(7)?),
                })
            },
        )?
        .collect::<duckdb::Result<_>>()?;
    let mut stmt = conn.prepare(&format!(
        "{base} SELECT fp, query, req, by_request, route, source, n, total, total - total / n, at_us \
         FROM f ORDER BY total DESC, at_us DESC, fp LIMIT ? OFFSET ?"
    ))?;
    let findings = stmt
        .query_map(
            params![
                from.clone(),
                to.clone(),
                N_PLUS_ONE_MIN_CALLS,
                N_PLUS_ONE_MIN_MS,
                w.limit,
                w.offset
            ],
            |r| {
                Ok(NPlusOneFinding {
                    fingerprint: r.get(0)?,
                    query: r.get(1)?,
                    request: r.get(2)?,
                    kind: NPlusOneFinding::kind(r.get(3)?),
                    route: r.get(4)?,
                    source: r.get(5)?,
                    count: r.get(6)?,
                    total_ms: r.get(7)?,
                    lost_ms: r.get(8)?,
                    at: micros_to_text(r.get(9)?),
                })
            },
        )?
        .collect::<duckdb::Result<_>>()?;
    Ok(n_plus_one_report(w, total, queries, findings))
}

impl NPlusOneFinding {
    /// `request` when the calls carried a request_id, else `session`.
    pub(super) fn kind(by_request: bool) -> &'static str {
        if by_request {
            "request"
        } else {
            "session"
        }
    }
}

/// The report of either engine's parts; `total` counts the findings of the whole window.
pub(super) fn n_plus_one_report(
    w: &Window,
    total: u64,
    queries: Vec<NPlusOneQuery>,
    findings: Vec<NPlusOneFinding>,
) -> NPlusOne {
    NPlusOne {
        range: w.json(),
        rule: NPlusOneRule {
            min_calls: N_PLUS_ONE_MIN_CALLS,
            min_total_ms: N_PLUS_ONE_MIN_MS,
            session_window_seconds: 1,
        },
        queries,
        findings,
        page: crate::http::window::Page {
            limit: w.limit,
            offset: w.offset,
            total,
        },
    }
}

/// A `string_agg(..., chr(31))` back into its items, sorted.
fn split_list(joined: Option<String>) -> Vec<String> {
    sorted(
        joined
            .map(|j| j.split('\u{1f}').map(str::to_string).collect())
            .unwrap_or_default(),
    )
}

/// A list of distinct values in one order whatever order the engine gathered them in.
pub(super) fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

/// A fingerprint worth an index check: slow by either rule, or a large share of time.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub fingerprint: String,
    pub query: String,
    /// The earliest call's text as sent, with its literals (when `store_literals` kept
    /// them): the same call on both engines.
    pub example: Option<String>,
    pub calls: u64,
    pub mean_ms: f64,
    pub total_ms: f64,
    /// `reported` (apps sent timings) or `pg_stat_statements`.
    pub origin: &'static str,
}

/// Fingerprints to advise on: slow by the threshold or PgHero's rule, or at least 10% of
/// all query time; most total time first.
pub async fn candidates(
    store: &Store,
    window: Window,
    slow: f64,
    max: u32,
) -> Result<Vec<Candidate>, StoreError> {
    store
        .query(move |conn| {
            let (from, to) = (ts_param(window.from_us()), ts_param(window.to_us()));
            let mut stmt = conn.prepare(&format!(
                "WITH g AS (SELECT {FP} AS fp, any_value({FP_TEXT}) AS nq, \
                   arg_min(query, event_time) FILTER (WHERE query <> {FP_TEXT}) AS example, count(*) AS calls, \
                   avg(duration) AS mean_ms, sum(duration) AS total_ms \
                   FROM {TABLE} WHERE event_time >= ? AND event_time < ? GROUP BY 1) \
                 SELECT fp, nq, example, calls, mean_ms, total_ms, true FROM g \
                 WHERE mean_ms > ? OR (calls >= ? AND mean_ms >= ?) \
                   OR total_ms >= 0.1 * (SELECT sum(total_ms) FROM g) \
                 UNION ALL \
                 SELECT fingerprint, any_value(query), NULL, (max(calls) - CASE WHEN count(*) > 1 THEN min(calls) ELSE 0 END)::BIGINT, \
                   (max(total_ms) - CASE WHEN count(*) > 1 THEN min(total_ms) ELSE 0 END) \
                     / greatest(max(calls) - CASE WHEN count(*) > 1 THEN min(calls) ELSE 0 END, 1), \
                   max(total_ms) - CASE WHEN count(*) > 1 THEN min(total_ms) ELSE 0 END, false \
                 FROM pg_statement_snapshots WHERE polled_at >= ? AND polled_at < ? \
                 GROUP BY fingerprint, queryid \
                 ORDER BY 6 DESC LIMIT ?"
            ))?;
            let rows = stmt.query_map(
                params![
                    from.clone(),
                    to.clone(),
                    slow,
                    PGHERO_MIN_CALLS,
                    PGHERO_MIN_MEAN_MS,
                    from,
                    to,
                    max * 2
                ],
                |r| {
                    Ok(Candidate {
                        fingerprint: r.get(0)?,
                        query: r.get(1)?,
                        example: r.get(2)?,
                        calls: r.get::<_, i64>(3)?.max(0) as u64,
                        mean_ms: r.get(4)?,
                        total_ms: r.get(5)?,
                        origin: if r.get::<_, bool>(6)? {
                            "reported"
                        } else {
                            "pg_stat_statements"
                        },
                    })
                },
            )?;
            let rows = rows.collect::<duckdb::Result<Vec<_>>>()?;
            Ok(merge_candidates(rows, max))
        })
        .await
}

/// The candidates of both sources, most total time first, one per fingerprint: reported
/// and polled, the reported example and the larger figures (the first) are kept.
pub fn merge_candidates(rows: Vec<Candidate>, max: u32) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for mut c in rows {
        if let Some(seen) = out.iter_mut().find(|o| o.fingerprint == c.fingerprint) {
            if seen.example.is_none() {
                seen.example = c.example.take();
            }
            continue;
        }
        out.push(c);
    }
    out.truncate(max as usize);
    out
}

/// Whether a fingerprint is worth advice: slow by the threshold or PgHero's rule, or at
/// least 10% of all query time (`all_ms`). `candidates`' SQL says the same for DuckDB.
pub fn is_candidate(calls: u64, mean_ms: f64, total_ms: f64, slow: f64, all_ms: f64) -> bool {
    mean_ms > slow
        || (calls >= PGHERO_MIN_CALLS && mean_ms >= PGHERO_MIN_MEAN_MS)
        || total_ms >= 0.1 * all_ms
}

/// Statistics from `pg_stat_statements` over a window, per fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct PgStats {
    pub fingerprint: String,
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: Option<f64>,
    pub rows: i64,
    /// Shared-buffer hits among blocks read: PgHero's cache hit rate.
    pub cache_hit_rate: Option<f64>,
}

/// The window's difference of the snapshots (or, with one snapshot, its totals since the
/// statistics were reset), most total time first.
pub async fn pg_stats(store: &Store, window: Window, max: u32) -> Result<Vec<PgStats>, StoreError> {
    store
        .query(move |conn| {
            let d = |c: &str| format!("(max({c}) - CASE WHEN count(*) > 1 THEN min({c}) ELSE 0 END)");
            let mut stmt = conn.prepare(&format!(
                "WITH per AS (SELECT fingerprint, any_value(query) AS query, {} AS calls, {} AS total_ms, \
                   {} AS rows, {} AS hit, {} AS read FROM pg_statement_snapshots \
                   WHERE polled_at >= ? AND polled_at < ? GROUP BY fingerprint, queryid) \
                 SELECT fingerprint, any_value(query), sum(calls)::BIGINT, sum(total_ms), sum(rows)::BIGINT, \
                   sum(hit)::DOUBLE / nullif(sum(hit) + sum(read), 0) \
                 FROM per GROUP BY fingerprint ORDER BY 4 DESC, 1 LIMIT ?",
                d("calls"),
                d("total_ms"),
                d("rows"),
                d("shared_blks_hit"),
                d("shared_blks_read")
            ))?;
            let rows = stmt.query_map(
                params![ts_param(window.from_us()), ts_param(window.to_us()), max],
                |r| {
                    let calls: i64 = r.get(2)?;
                    let total: f64 = r.get(3)?;
                    Ok(PgStats {
                        fingerprint: r.get(0)?,
                        query: r.get(1)?,
                        calls,
                        total_ms: total,
                        mean_ms: (calls > 0).then(|| total / calls as f64),
                        rows: r.get(4)?,
                        cache_hit_rate: r.get(5)?,
                    })
                },
            )?;
            Ok(rows.collect::<duckdb::Result<_>>()?)
        })
        .await
}

/// Stores one poll of `pg_stat_statements`.
pub async fn save_snapshot(
    store: &Store,
    at_us: i64,
    rows: Vec<(super::pg::Statement, String)>,
) -> Result<(), StoreError> {
    store
        .maintain(move |conn| {
            let mut app = conn.appender("pg_statement_snapshots")?;
            for (s, fp) in &rows {
                app.append_row(params![
                    ts_param(at_us),
                    s.queryid,
                    fp,
                    s.query,
                    s.calls,
                    s.total_ms,
                    s.rows,
                    s.shared_blks_hit,
                    s.shared_blks_read
                ])?;
            }
            app.flush()?;
            Ok(())
        })
        .await
}
