//! The query-timing reads on the ClickHouse engine: each query's ClickHouse SQL, side by
//! side with its DuckDB twin in `query.rs`, assembled by the same code there (`report`,
//! `fingerprints_report`, `n_plus_one_report`, `Headline::of`), so both engines give the
//! same answers. Percentiles are DuckDB's `quantile_cont`
//! (`store::clickhouse::fold::quantile_cont`); `cached` is a UInt8 column.
//!
//! Inner selects rename the columns a sum is named after (`rows`, `by_request`): in
//! ClickHouse an alias shadows the column of its name.

use serde_json::Value;

use super::query::{
    self, Candidate, FingerprintRow, FingerprintSums, Fingerprints, Headline, NPlusOne,
    NPlusOneFinding, NPlusOneQuery, SortBy, Summary, Totals, N_PLUS_ONE_MIN_CALLS,
    N_PLUS_ONE_MIN_MS, PGHERO_MIN_CALLS, PGHERO_MIN_MEAN_MS, TABLE, TOP_QUERIES,
};
use crate::http::Window;
use crate::store::clickhouse::fold::{count, float, json_row, quantile_cont, quantiles_cont, Kind};
use crate::store::clickhouse::{quote_list, time_range, ChError, ClickHouse};
use crate::store::StoreError;

/// `query::FP` and `query::FP_TEXT`: rows stored without a fingerprint group by text.
const FP: &str = "ifNull(fingerprint, concat('text:', lower(hex(MD5(query)))))";
const FP_TEXT: &str = "ifNull(normalized_query, query)";

/// `query::COLUMNS` on ClickHouse: name and how DuckDB's JSON shows it.
const COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Same),
    ("query", Kind::Same),
    ("duration", Kind::Float),
    ("rows", Kind::Same),
    ("cached", Kind::Bool),
    ("user_id", Kind::Same),
    ("ip", Kind::Same),
    ("timestamp", Kind::Same),
    ("created_at", Kind::Time),
    ("event_time", Kind::Time),
    ("fingerprint", Kind::Same),
    ("normalized_query", Kind::Same),
    ("request_id", Kind::Same),
    ("route", Kind::Same),
    ("source", Kind::Same),
];

const SLOWEST: &[(&str, Kind)] = &[
    ("query", Kind::Same),
    ("fingerprint", Kind::Same),
    ("calls", Kind::Same),
    ("avg_duration", Kind::Float),
    ("max_duration", Kind::Float),
    ("p75_duration", Kind::Float),
    ("cache_hit_rate", Kind::Float),
];

const SERIES: &[(&str, Kind)] = &[
    ("t", Kind::Time),
    ("queries", Kind::Same),
    ("slow", Kind::Same),
    ("p95_duration", Kind::Float),
];

async fn rows(ch: &ClickHouse, sql: &str) -> Result<Vec<Value>, StoreError> {
    ch.rows(sql).await.map_err(StoreError::ClickHouse)
}

async fn one(ch: &ClickHouse, sql: &str) -> Result<Value, StoreError> {
    rows(ch, sql)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::ClickHouse(ChError::Decode("expected one row".into())))
}

/// The window's timings with their fingerprint (`fp`) and normalised text (`nq`).
fn timings(ch: &ClickHouse, w: &Window) -> String {
    format!(
        "(SELECT {FP} AS fp, {FP_TEXT} AS nq, duration, rows AS nrows, cached, user_id, ip, request_id, \
         route, source, event_time FROM {} WHERE {})",
        ch.table(TABLE),
        time_range("event_time", "event_at", w.from_us(), w.to_us())
    )
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn texts(v: &Value, k: &str) -> Vec<String> {
    v[k].as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ms(v: &Value, k: &str) -> f64 {
    float(v, k).unwrap_or(0.0)
}

async fn totals(ch: &ClickHouse, w: &Window, slow: f64) -> Result<Totals, StoreError> {
    let from = timings(ch, w);
    let r = one(
        ch,
        &format!(
            "SELECT count() AS n, avg(duration) AS a, countIf(duration > {slow:?}) AS slow, \
             avg(duration > {slow:?}) AS slow_rate, countIf(cached = 1) AS cached_n, avg(cached) AS hit_rate \
             FROM {from}"
        ),
    )
    .await?;
    let p = quantiles_cont(ch, "duration", "1", &from, &[0.75, 0.95])
        .await
        .map_err(StoreError::ClickHouse)?;
    Ok(Totals {
        queries: count(&r, "n"),
        avg_duration: float(&r, "a"),
        p75_duration: p[0],
        p95_duration: p[1],
        slow: count(&r, "slow"),
        slow_rate: float(&r, "slow_rate"),
        slow_threshold: slow,
        cached: count(&r, "cached_n"),
        cache_hit_rate: float(&r, "hit_rate"),
    })
}

pub async fn summary(ch: &ClickHouse, w: &Window, slow: f64) -> Result<Summary, StoreError> {
    let totals = totals(ch, w, slow).await?;
    let from = timings(ch, w);
    let slowest = rows(
        ch,
        &format!(
            "SELECT any(nq) AS query, fp AS fingerprint, count() AS calls, avg(duration) AS avg_duration, \
             max(duration) AS max_duration, {} AS p75_duration, avg(cached) AS cache_hit_rate \
             FROM {from} GROUP BY fp ORDER BY avg_duration DESC, fp LIMIT {TOP_QUERIES}",
            quantile_cont("duration", 0.75)
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, SLOWEST))
    .collect();
    let b = w.bucket_us().max(1);
    let series = rows(
        ch,
        &format!(
            "SELECT intDiv(event_time, {b}) * {b} AS t, count() AS queries, countIf(duration > {slow:?}) AS slow, \
             {} AS p95_duration FROM {from} GROUP BY t ORDER BY t",
            quantile_cont("duration", 0.95)
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
            time_range("event_time", "event_at", w.from_us(), w.to_us()),
            w.limit,
            w.offset
        ),
    )
    .await?
    .iter()
    .map(|r| json_row(r, COLUMNS))
    .collect();
    Ok(query::report(w, totals, slowest, series, newest))
}

pub async fn headline(ch: &ClickHouse, w: &Window, slow: f64) -> Result<Headline, StoreError> {
    Ok(Headline::of(&totals(ch, w, slow).await?))
}

/// Per fingerprint over the window: `query::fingerprints_sync`'s `g`.
fn per_fingerprint(ch: &ClickHouse, w: &Window, slow: f64) -> String {
    format!(
        "(SELECT fp, any(nq) AS query, count() AS calls, sum(duration) AS total_ms, avg(duration) AS mean_ms, \
         min(duration) AS min_ms, max(duration) AS max_ms, stddevPop(duration) AS stddev_ms, \
         {} AS p50_ms, {} AS p95_ms, {} AS p99_ms, ifNull(sum(nrows), 0) AS rows, \
         ifNull(avg(cached), 0) AS cache_hit_rate, min(event_time) AS first_us, max(event_time) AS last_us, \
         countIf(duration > {slow:?}) AS slow FROM {} GROUP BY fp)",
        quantile_cont("duration", 0.5),
        quantile_cont("duration", 0.95),
        quantile_cont("duration", 0.99),
        timings(ch, w)
    )
}

pub async fn fingerprints(
    ch: &ClickHouse,
    w: &Window,
    slow: f64,
    sort: SortBy,
) -> Result<Fingerprints, StoreError> {
    let g = per_fingerprint(ch, w, slow);
    let s = one(
        ch,
        &format!(
            "SELECT sum(calls) AS q, sum(total_ms) AS ms, count() AS n, countIf(mean_ms > {slow:?}) AS by_threshold, \
             countIf(calls >= {PGHERO_MIN_CALLS} AND mean_ms >= {PGHERO_MIN_MEAN_MS:?}) AS by_pghero FROM {g}"
        ),
    )
    .await?;
    let sums = FingerprintSums {
        queries: count(&s, "q"),
        total_ms: ms(&s, "ms"),
        fingerprints: count(&s, "n"),
        slow_by_threshold: count(&s, "by_threshold"),
        slow_by_pghero: count(&s, "by_pghero"),
    };
    let page: Vec<FingerprintRow> = rows(
        ch,
        &format!(
            "SELECT * FROM {g} ORDER BY {} DESC, fp LIMIT {} OFFSET {}",
            // The percentile comes as text (`fold::interpolate`): sort by its number.
            match sort {
                SortBy::P95 => format!("toFloat64({})", sort.column()),
                _ => sort.column().to_string(),
            },
            w.limit,
            w.offset
        ),
    )
    .await?
    .iter()
    .map(|r| FingerprintRow {
        fingerprint: text(r, "fp"),
        query: text(r, "query"),
        calls: count(r, "calls"),
        total_ms: ms(r, "total_ms"),
        mean_ms: ms(r, "mean_ms"),
        min_ms: ms(r, "min_ms"),
        max_ms: ms(r, "max_ms"),
        stddev_ms: ms(r, "stddev_ms"),
        p50_ms: ms(r, "p50_ms"),
        p95_ms: ms(r, "p95_ms"),
        p99_ms: ms(r, "p99_ms"),
        rows: r["rows"].as_i64().unwrap_or(0),
        cache_hit_rate: ms(r, "cache_hit_rate"),
        first_us: r["first_us"].as_i64().unwrap_or(0),
        last_us: r["last_us"].as_i64().unwrap_or(0),
        slow: count(r, "slow"),
    })
    .collect();
    let (mut points, mut sources) = (Vec::new(), Vec::new());
    if !page.is_empty() {
        // Only the page's fingerprints: ClickHouse filters before it groups.
        let on_page = quote_list(page.iter().map(|p| p.fingerprint.as_str()));
        let from = timings(ch, w);
        let b = w.bucket_us().max(1);
        points = rows(
            ch,
            &format!(
                "SELECT fp, intDiv(event_time, {b}) * {b} AS t, count() AS n, sum(duration) AS ms \
                 FROM {from} WHERE fp IN ({on_page}) GROUP BY fp, t ORDER BY fp, t"
            ),
        )
        .await?
        .iter()
        .map(|r| {
            (
                text(r, "fp"),
                r["t"].as_i64().unwrap_or(0),
                count(r, "n"),
                ms(r, "ms"),
            )
        })
        .collect();
        sources = rows(
            ch,
            &format!(
                "SELECT fp, source AS s, count() AS n FROM {from} \
                 WHERE fp IN ({on_page}) AND source IS NOT NULL GROUP BY fp, s ORDER BY fp, n DESC, s"
            ),
        )
        .await?
        .iter()
        .map(|r| (text(r, "fp"), text(r, "s")))
        .collect();
    }
    Ok(query::fingerprints_report(
        w, slow, sort, sums, page, points, sources,
    ))
}

/// The most frequent value of a Nullable column in the group, NULL for none (DuckDB's
/// `mode`; a tie may go either way on either engine).
fn mode(col: &str) -> String {
    format!("if(empty(topK(1)({col})), NULL, arrayElement(topK(1)({col}), 1))")
}

pub async fn n_plus_one(ch: &ClickHouse, w: &Window) -> Result<NPlusOne, StoreError> {
    // Sentry's rule as `query::n_plus_one_sync`: a request, or without one, one user's
    // (or IP's) second, repeating a fingerprint.
    let f = format!(
        "(SELECT fp, req, any(nq) AS query, max(by_req) AS by_request, {} AS top_route, {} AS top_source, \
         count() AS n, sum(duration) AS total, min(event_time) AS at_us FROM \
         (SELECT fp, nq, duration, route, source, event_time, \
          multiIf(request_id IS NOT NULL, request_id, ifNull(user_id, ip) IS NOT NULL, \
            concat('session:', ifNull(user_id, ip), '@', toString(intDiv(event_time, 1000000))), NULL) AS req, \
          request_id IS NOT NULL AS by_req FROM {}) \
         WHERE req IS NOT NULL GROUP BY fp, req \
         HAVING n >= {N_PLUS_ONE_MIN_CALLS} AND total > {N_PLUS_ONE_MIN_MS:?})",
        mode("route"),
        mode("source"),
        timings(ch, w)
    );
    let total = count(
        &one(ch, &format!("SELECT count() AS n FROM {f}")).await?,
        "n",
    );
    let queries = rows(
        ch,
        &format!(
            "SELECT fp, any(query) AS q, count() AS requests, sum(n) AS calls, sum(total) AS total_ms, \
             sum(total - total / n) AS lost_ms, groupUniqArray(top_route) AS routes, \
             groupUniqArray(top_source) AS sources FROM {f} GROUP BY fp ORDER BY lost_ms DESC, fp LIMIT 100"
        ),
    )
    .await?
    .iter()
    .map(|r| NPlusOneQuery {
        fingerprint: text(r, "fp"),
        query: text(r, "q"),
        requests: count(r, "requests"),
        calls: count(r, "calls"),
        total_ms: ms(r, "total_ms"),
        lost_ms: ms(r, "lost_ms"),
        routes: query::sorted(texts(r, "routes")),
        sources: query::sorted(texts(r, "sources")),
    })
    .collect();
    let findings = rows(
        ch,
        &format!(
            "SELECT fp, query, req, by_request, top_route, top_source, n, total, total - total / n AS lost, at_us \
             FROM {f} ORDER BY total DESC, at_us DESC, fp LIMIT {} OFFSET {}",
            w.limit, w.offset
        ),
    )
    .await?
    .iter()
    .map(|r| NPlusOneFinding {
        fingerprint: text(r, "fp"),
        query: text(r, "query"),
        request: text(r, "req"),
        kind: NPlusOneFinding::kind(count(r, "by_request") > 0),
        route: r["top_route"].as_str().map(str::to_string),
        source: r["top_source"].as_str().map(str::to_string),
        count: count(r, "n"),
        total_ms: ms(r, "total"),
        lost_ms: ms(r, "lost"),
        at: crate::store::clickhouse::iso_us(r["at_us"].as_i64().unwrap_or(0)),
    })
    .collect();
    Ok(query::n_plus_one_report(w, total, queries, findings))
}

/// `query::candidates` on ClickHouse: the reported timings' fingerprints worth advice.
/// ClickHouse nodes keep no `pg_stat_statements` snapshots (see `reads::pg_stats`), so
/// these are the reported half only; the threshold is applied in Rust (`is_candidate`)
/// because it needs the sum over all groups.
pub async fn candidates(
    ch: &ClickHouse,
    w: &Window,
    slow: f64,
    max: u32,
) -> Result<Vec<Candidate>, StoreError> {
    let groups = rows(
        ch,
        &format!(
            "SELECT {FP} AS fp, any({FP_TEXT}) AS nq, argMinIf(query, event_time, query != {FP_TEXT}) AS example, \
             countIf(query != {FP_TEXT}) AS examples, count() AS calls, avg(duration) AS mean_ms, \
             sum(duration) AS total_ms FROM {} WHERE {} GROUP BY fp",
            ch.table(TABLE),
            time_range("event_time", "event_at", w.from_us(), w.to_us())
        ),
    )
    .await?;
    let total = |r: &Value| float(r, "total_ms").unwrap_or(0.0);
    let all_ms: f64 = groups.iter().map(total).sum();
    let mut out: Vec<Candidate> = groups
        .iter()
        .map(|r| Candidate {
            fingerprint: text(r, "fp"),
            query: text(r, "nq"),
            example: (count(r, "examples") > 0).then(|| text(r, "example")),
            calls: count(r, "calls"),
            mean_ms: float(r, "mean_ms").unwrap_or(0.0),
            total_ms: total(r),
            origin: "reported",
        })
        .filter(|c| query::is_candidate(c.calls, c.mean_ms, c.total_ms, slow, all_ms))
        .collect();
    out.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    out.truncate(max as usize * 2);
    Ok(query::merge_candidates(out, max))
}
