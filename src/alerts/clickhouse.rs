//! The alert reads on the ClickHouse engine: the top errors and the measures, each the
//! ClickHouse twin of its DuckDB SQL (`errors::top`, `measures::sql`), folded into the same
//! types (`TopErrors::of`, `Stats`), so both engines give the same answers. 18.16 has no
//! FULL JOIN worth the name: a ratio is its two counts stacked (UNION ALL) and summed per
//! group. Percentiles are DuckDB's `quantile_cont` (`fold::quantile_cont`). Errors and the
//! measures keep DuckDB's choice of clock: the receive time `created_at`.

use std::collections::HashMap;

use serde_json::Value;

use super::errors::TopErrors;
use super::measures::{self, Count, Dim, Key, Measure, Readings, Shape, Stats, Table};
use crate::http::Window;
use crate::store::clickhouse::fold::{count, float, json_row, quantile_cont, Kind};
use crate::store::clickhouse::{quote, time_range, ChError, ClickHouse};
use crate::store::StoreError;

fn ch_err(e: ChError) -> StoreError {
    StoreError::ClickHouse(e)
}

/// The columns of a top error, as DuckDB's JSON shows them.
const TOP: &[(&str, Kind)] = &[
    ("fingerprint", Kind::Same),
    ("kind", Kind::Same),
    ("message", Kind::Same),
    ("source", Kind::Same),
    ("line", Kind::Same),
    ("col", Kind::Same),
    ("status", Kind::Same),
    ("count", Kind::Same),
    ("sessions", Kind::Same),
    ("routes", Kind::Same),
    ("first_seen", Kind::Time),
    ("last_seen", Kind::Time),
    ("stack", Kind::Same),
];

/// `[from, to)` of the receive time of a table whose event time may differ from it: no
/// partition pruning, as DuckDB reads it.
fn received(from_us: i64, to_us: i64) -> String {
    format!(
        "created_at >= {} AND created_at < {}",
        from_us.max(0),
        to_us.max(0)
    )
}

/// `GET /api/analytics/errors` on ClickHouse.
pub async fn top_errors(ch: &ClickHouse, w: &Window) -> Result<TopErrors, StoreError> {
    let errors = ch.table("app_errors");
    // An error's event time is its receive time (migration 0005): the key prunes.
    let window = time_range("event_time", "event_at", w.from_us(), w.to_us());
    let counts: Value = ch
        .row(&format!(
            "SELECT countIf(kind = 'js') AS js, countIf(kind = 'server') AS server FROM {errors} WHERE {window}"
        ))
        .await
        .map_err(ch_err)?;
    let views: Value = ch
        .row(&format!(
            "SELECT count() AS n FROM {} WHERE event = 'pageview' AND {}",
            ch.table("user_events"),
            received(w.from_us(), w.to_us())
        ))
        .await
        .map_err(ch_err)?;
    // Columns renamed inside, so no aggregate's alias shadows a column another one reads.
    // DuckDB's string_agg(DISTINCT route) has no stated order: sorted here.
    let sql = format!(
        "SELECT fp AS fingerprint, k AS kind, any(m) AS message, any(src) AS source, any(ln) AS line, \
         any(cl) AS col, any(st) AS status, count() AS count, {sessions} AS sessions, \
         if(empty(groupUniqArray(rt)), NULL, \
            substringUTF8(arrayStringConcat(arraySort(groupUniqArray(rt)), ' '), 1, 300)) AS routes, \
         min(t) AS first_seen, max(t) AS last_seen, argMax(sk, t) AS stack \
         FROM (SELECT fingerprint AS fp, kind AS k, message AS m, source AS src, line AS ln, col AS cl, \
               status AS st, session_id AS sid, route AS rt, created_at AS t, stack AS sk \
               FROM {errors} WHERE {window}) \
         GROUP BY fp, k ORDER BY count DESC, last_seen DESC LIMIT {} OFFSET {}",
        w.limit,
        w.offset,
        sessions = distinct("sid"),
    );
    let top = ch
        .rows::<Value>(&sql)
        .await
        .map_err(ch_err)?
        .iter()
        .map(|r| json_row(r, TOP))
        .collect();
    Ok(TopErrors::of(
        w,
        count(&counts, "js") as i64,
        count(&counts, "server") as i64,
        count(&views, "n") as i64,
        top,
    ))
}

/// DuckDB's `count(DISTINCT col)`: 0, not NULL, when every value is NULL (ClickHouse's
/// aggregates over a Nullable column answer NULL then).
fn distinct(col: &str) -> String {
    format!("uniqExactIf(assumeNotNull({col}), isNotNull({col}))")
}

/// `measures::Table::dim` on ClickHouse, as `Nullable(String)`: web vitals keep '' where
/// DuckDB has NULL (a sort-key column), so '' reads back as NULL.
fn dim(table: Table, d: Dim) -> Option<String> {
    let col = match (table, d) {
        (Table::Performance, Dim::Route) => "nullIf(route, '')",
        (Table::Performance, Dim::Device) => "nullIf(device, '')",
        (Table::Events | Table::Errors, Dim::Route) => "route",
        (Table::Events, Dim::Device) => "device",
        (Table::Ai, Dim::Model) => "model",
        // DuckDB's `left(md5(regexp_replace(...)), 16)`: RE2 on both, md5 as lower hex.
        (Table::Database, Dim::Fingerprint) => {
            "substring(lower(hex(MD5(replaceRegexpAll(replaceRegexpAll(lower(query), \
             '\\'[^\\']*\\'|\\\\b[0-9]+(\\\\.[0-9]+)?\\\\b', '?'), '\\\\s+', ' ')))), 1, 16)"
        }
        _ => return None,
    };
    Some(format!("CAST({col} AS Nullable(String))"))
}

/// A measure's value per row (`Shape::Values`'s `x`) on ClickHouse; booleans are UInt8.
fn value_of(m: Measure, slow_ms: f64) -> String {
    use Measure as M;
    match m {
        M::Lcp => "lcp".into(),
        M::Inp => "inp".into(),
        M::Cls => "cls".into(),
        M::Fcp => "fcp".into(),
        M::Ttfb => "ttfb".into(),
        M::Fid => "fid".into(),
        M::AiLatency | M::DbQueryTime => "duration".into(),
        M::AiErrorRate => "if(success = 1, 0.0, 100.0)".into(),
        M::AiCacheHitRate => "if(cache_hit = 1, 100.0, 0.0)".into(),
        M::AiTokens => "toFloat64(tokens)".into(),
        M::AiCost => "cost".into(),
        M::DbSlowQueryRate => format!("if(duration > {slow_ms:?}, 100.0, 0.0)"),
        M::DbCacheHitRate => "if(cached = 1, 100.0, 0.0)".into(),
        // Counts, ratios and gauges have no per-row value.
        _ => "NULL".into(),
    }
}

/// A count's condition on ClickHouse: `visitor_id` is '' where DuckDB has NULL.
fn cond_of(cond: &str) -> String {
    cond.replace("visitor_id IS NOT NULL", "visitor_id != ''")
}

fn where_clause(table: Table, cond: &str, key: &Key) -> Result<String, StoreError> {
    let mut w = received(key.from_us, key.to_us);
    if !cond.is_empty() {
        w.push_str(" AND ");
        w.push_str(cond);
    }
    for (d, v) in key.filters.iter() {
        let col = dim(table, d)
            .ok_or_else(|| StoreError::Internal(format!("{} has no {}", table.name(), d.name())))?;
        w.push_str(&format!(" AND {col} = {}", quote(v)));
    }
    Ok(w)
}

fn group_expr(table: Table, key: &Key) -> Result<String, StoreError> {
    match key.group_by {
        None => Ok("CAST(NULL AS Nullable(String))".into()),
        Some(d) => dim(table, d)
            .ok_or_else(|| StoreError::Internal(format!("{} has no {}", table.name(), d.name()))),
    }
}

fn bucket_expr(key: &Key) -> String {
    match key.bucket_us {
        Some(b) => format!("intDiv(toInt64(created_at), {b}) * {b}"),
        None => format!("toInt64({})", key.from_us),
    }
}

/// Columns g, b, k: rows (or distinct values) per group and bucket.
fn count_sql(ch: &ClickHouse, c: Count, key: &Key) -> Result<String, StoreError> {
    let w = where_clause(c.table, &cond_of(c.cond), key)?;
    let k = match c.distinct {
        Some(col) => distinct(col),
        None => "count()".into(),
    };
    Ok(format!(
        "SELECT {g} AS g, {b} AS b, toFloat64({k}) AS k FROM {t} WHERE {w} GROUP BY g, b",
        g = group_expr(c.table, key)?,
        b = bucket_expr(key),
        t = ch.table(c.table.name()),
    ))
}

/// `measures::sql` on ClickHouse; columns g, b, n, avg, p50, p75, p95, max.
pub fn sql(ch: &ClickHouse, key: &Key, slow_ms: f64) -> Result<String, StoreError> {
    Ok(match key.measure.info().shape {
        Shape::Values {
            table,
            newest_per_view,
            ..
        } => {
            let x = format!("toFloat64({})", value_of(key.measure, slow_ms));
            let w = where_clause(table, &format!("isNotNull({x})"), key)?;
            let g = group_expr(table, key)?;
            let b = bucket_expr(key);
            let t = ch.table(table.name());
            let inner = if newest_per_view {
                // A page view's metric can be reported again: its newest report counts.
                format!(
                    "SELECT g, b, argMax(v, created_at) AS x FROM \
                     (SELECT {g} AS g, {b} AS b, assumeNotNull({x}) AS v, created_at, \
                      ifNull(metric_id, id) AS instance, ifNull(metric, '') AS which FROM {t} WHERE {w}) \
                     GROUP BY instance, which, g, b"
                )
            } else {
                format!("SELECT {g} AS g, {b} AS b, assumeNotNull({x}) AS x FROM {t} WHERE {w}")
            };
            format!(
                "SELECT g, b, toFloat64(count()) AS n, avg(x) AS avg, {} AS p50, {} AS p75, {} AS p95, \
                 max(x) AS max FROM ({inner}) GROUP BY g, b",
                quantile_cont("x", 0.5),
                quantile_cont("x", 0.75),
                quantile_cont("x", 0.95),
            )
        }
        Shape::Count(c) => {
            let q = count_sql(ch, c, key)?;
            format!(
                "SELECT g, b, k AS n, k AS avg, k AS p50, k AS p75, k AS p95, k AS max FROM ({q})"
            )
        }
        Shape::Ratio { num, den } => {
            // DuckDB's FULL JOIN of the two counts on (g, b): every group of either side,
            // a missing side counting 0.
            let n = count_sql(ch, num, key)?;
            let d = count_sql(ch, den, key)?;
            format!(
                "SELECT g, b, n, v AS avg, v AS p50, v AS p75, v AS p95, v AS max FROM \
                 (SELECT g, b, sumIf(k, side = 1) AS n, \
                         if(n > 0, least(100.0, 100.0 * sumIf(k, side = 0) / n), NULL) AS v \
                  FROM (SELECT g, b, k, 0 AS side FROM ({n}) UNION ALL SELECT g, b, k, 1 AS side FROM ({d})) \
                  GROUP BY g, b)"
            )
        }
        Shape::Gauge(_) => {
            return Err(StoreError::Internal(
                "a gauge is read from the process, not queried".into(),
            ))
        }
    })
}

/// `measures::run` on ClickHouse: every key once, the answers by key.
pub async fn run(
    ch: &ClickHouse,
    keys: &[Key],
    slow_ms: f64,
    readings: Readings,
) -> Result<HashMap<Key, Vec<Stats>>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for key in keys {
        if out.contains_key(key) {
            continue;
        }
        if let Some(rows) = measures::gauge(key, readings) {
            out.insert(key.clone(), rows);
            continue;
        }
        let rows: Vec<Value> = ch.rows(&sql(ch, key, slow_ms)?).await.map_err(ch_err)?;
        let stats = rows
            .iter()
            .map(|r| Stats {
                group: r["g"].as_str().map(str::to_string),
                bucket_us: r["b"].as_i64().unwrap_or(key.from_us),
                n: float(r, "n").unwrap_or(0.0),
                avg: float(r, "avg"),
                p50: float(r, "p50"),
                p75: float(r, "p75"),
                p95: float(r, "p95"),
                max: float(r, "max"),
            })
            .collect();
        out.insert(key.clone(), stats);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::measures::Filters;

    #[test]
    fn filters_are_quoted_and_nulls_read_as_duckdb_does() {
        for m in Measure::ALL {
            let table = match m.info().shape {
                Shape::Values { table, .. } => table,
                Shape::Count(c) => c.table,
                Shape::Ratio { den, .. } => den.table,
                Shape::Gauge(_) => continue,
            };
            let mut filters = Filters::default();
            if m.has_dim(Dim::Route) {
                filters.route = Some("x'; DROP TABLE user_events; --".into());
            }
            let key = Key {
                measure: m,
                filters,
                group_by: Dim::ALL.into_iter().find(|d| m.has_dim(*d)),
                from_us: 0,
                to_us: 1,
                bucket_us: None,
            };
            let w = where_clause(table, "", &key).unwrap();
            assert!(!w.contains("x';"), "{m:?}: {w}");
            if m.has_dim(Dim::Route) {
                assert!(w.contains("'x\\'; DROP TABLE user_events; --'"), "{w}");
            }
            assert!(group_expr(table, &key)
                .unwrap()
                .contains("Nullable(String)"));
        }
        assert_eq!(cond_of("visitor_id IS NOT NULL"), "visitor_id != ''");
        assert_eq!(
            distinct("sid"),
            "uniqExactIf(assumeNotNull(sid), isNotNull(sid))"
        );
    }
}
