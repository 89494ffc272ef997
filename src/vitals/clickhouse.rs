//! The web-vitals reads on the ClickHouse engine: each query of the exact path (`exact.rs`)
//! in ClickHouse SQL, folded by the same Rust code (`VitalStats::new`, `Group::new`,
//! `Groups::new`, `Histogram::new`, `Window::report`), so both engines give the same
//! answers. ClickHouse always reads the rows (scans are what it is built for), so the
//! DuckDB roll-up (`rolled.rs`) has no ClickHouse twin and nothing here is an estimate.
//!
//! Percentiles are DuckDB's `quantile_cont` exactly: linear interpolation between the two
//! nearest ranks, `lo·(1-d) + hi·d` as DuckDB computes it, over the sorted values. None of
//! 18.16's quantile functions is that: `quantileExact` returns one of the values (4, not
//! 3.25, for p75 of 1..4), `quantile` interpolates over a sample of 8192 values,
//! `quantileTDigest` is approximate, and `quantileExactInclusive` arrived after 18.16. The
//! sorted array costs what `quantileExact` costs: every value of the group in memory.
//! Floats are written as RowBinary (`store::clickhouse::rows::format`: 18.16 reads decimal
//! text inexactly) and read back as text (`toString`) for Rust's exact parser (serde_json's
//! is best-effort), so values and percentiles are DuckDB's to the last bit.
//!
//! The stored `route` and `device` are `''` for none (sort-key columns); `latest` turns
//! them back into NULL, so everything above it reads them as DuckDB's columns.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::exact::{Headline, Vital, HEADLINE};
use super::filter::{Filter, Stat};
use super::stats::{
    bin_layout, Group, Groups, Histogram, Stats, Summary, Totals, VitalStats, TOP_ROUTES,
};
use super::{Device, Metric};
use crate::http::window::Window;
use crate::store::clickhouse::fold::{float as f, interpolate, quantiles_cont_of};
use crate::store::clickhouse::{iso_us, quote, time_range, ClickHouse};
use crate::store::{JsonRow, StoreError};

async fn rows(ch: &ClickHouse, sql: &str) -> Result<Vec<Value>, StoreError> {
    ch.rows(sql).await.map_err(StoreError::ClickHouse)
}

fn u(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or(0)
}

fn number(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `FROM` source: the window's rows by event time, each (metric_id, metric)'s newest
/// report (by receive time) where one of its rows is marked `rereport`, as `filter::latest`
/// selects them. GLOBAL: the subqueries run once over the whole cluster, so a re-report is
/// matched wherever it is stored, also after a shard was added.
fn latest(ch: &ClickHouse, w: &Window, f: &Filter) -> String {
    let t = ch.table("performance_metrics");
    let mut set = time_range("event_time", "event_at", w.from_us(), w.to_us());
    if let Some(r) = &f.route {
        set.push_str(&format!(" AND route = {}", quote(r)));
    }
    if let Some(d) = f.device {
        set.push_str(&format!(" AND device = {}", quote(d.as_str())));
    }
    let key = "assumeNotNull(metric_id), ifNull(metric, '')";
    format!(
        "(SELECT id, user_id, session_id, nullIf(route, '') AS route, path, nullIf(device, '') AS device, \
           lcp, inp, cls, fcp, ttfb, fid, metric, metric_id, navigation_type, attribution, user_agent, \
           connection, ip, timestamp, created_at, event_time \
         FROM (SELECT * FROM {t} WHERE {set} AND id GLOBAL NOT IN ( \
           SELECT x FROM (SELECT argMax(id, created_at) AS keep, groupArray(id) AS ids FROM {t} \
             WHERE {set} AND isNotNull(metric_id) AND ({key}) GLOBAL IN ( \
               SELECT {key} FROM {t} WHERE {set} AND rereport = 1 AND isNotNull(metric_id)) \
             GROUP BY {key}) \
           ARRAY JOIN ids AS x WHERE x != keep)))"
    )
}

/// The two levels of a query over `metrics`: the inner aggregates (each metric's sorted
/// values `c_s`, and with `counts` its count, good and poor counts) and the outer columns
/// (`c_q`, its value at `q`, and the counts passed on). The arrays never leave the server.
fn aggregates(metrics: &[Metric], q: f64, counts: bool) -> (String, String) {
    let (mut inner, mut outer) = (Vec::new(), Vec::new());
    for m in metrics {
        let (c, (good, poor)) = (m.column(), m.thresholds());
        inner.push(format!("arraySort(groupArray({c})) AS {c}_s"));
        outer.push(format!("{} AS {c}_q", interpolate(&format!("{c}_s"), q)));
        if counts {
            inner.push(format!(
                "count({c}) AS {c}_n, countIf({c} <= {good}) AS {c}_good, countIf({c} > {poor}) AS {c}_poor"
            ));
            outer.push(format!("{c}_n, {c}_good, {c}_poor"));
        }
    }
    (inner.join(", "), outer.join(", "))
}

/// Every metric's stats from the columns `aggregates(.., true)` named.
fn vital_stats(r: &Value, stat: Stat) -> BTreeMap<&'static str, VitalStats> {
    Metric::ALL
        .iter()
        .map(|m| {
            let c = m.column();
            let n = |k: &str| u(r, &format!("{c}_{k}"));
            let stats = VitalStats::new(
                *m,
                stat,
                f(r, &format!("{c}_q")),
                n("n"),
                n("good"),
                n("poor"),
            );
            (c, stats)
        })
        .collect()
}

/// Each metric at `stat` under its own name, as the summary's routes and series show it.
fn at_stat(r: &Value, row: &mut JsonRow) {
    for m in Metric::ALL {
        let c = m.column();
        row.insert(c.into(), number(f(r, &format!("{c}_q"))));
    }
}

pub async fn headline(ch: &ClickHouse, w: &Window) -> Result<Headline, StoreError> {
    let v = latest(ch, w, &Filter::default());
    let specs: Vec<(&str, &str, &[f64])> = HEADLINE
        .iter()
        .map(|m| (m.column(), "1", &[0.75][..]))
        .collect();
    let p75 = quantiles_cont_of(ch, &v, &specs)
        .await
        .map_err(StoreError::ClickHouse)?;
    Ok(HEADLINE
        .iter()
        .zip(p75)
        .map(|(m, (n, q))| (m.column(), Vital::new(*m, q[0], n)))
        .collect())
}

pub async fn summary(
    ch: &ClickHouse,
    w: &Window,
    f: &Filter,
    stat: Stat,
) -> Result<Summary, StoreError> {
    let v = latest(ch, w, f);
    let q = stat.q();
    let (inner, outer) = aggregates(&Metric::ALL, q, true);
    let r = rows(
        ch,
        &format!(
            "SELECT samples, sessions, users, routes, {outer} FROM (SELECT count() AS samples, \
             uniqExact(session_id) AS sessions, uniqExact(user_id) AS users, uniqExact(route) AS routes, \
             {inner} FROM {v})"
        ),
    )
    .await?;
    let r = r.first().cloned().unwrap_or(Value::Null);
    let totals = Totals {
        samples: u(&r, "samples"),
        sessions: Some(u(&r, "sessions")),
        users: Some(u(&r, "users")),
        routes: u(&r, "routes"),
    };
    let vitals = vital_stats(&r, stat);
    let (inner, outer) = aggregates(&Metric::ALL, q, false);
    let routes = rows(
        ch,
        &format!(
            "SELECT route, samples, {outer} FROM (SELECT route, count() AS samples, {inner} FROM {v} \
             GROUP BY route) ORDER BY samples DESC, route LIMIT {TOP_ROUTES}"
        ),
    )
    .await?
    .iter()
    .map(|r| {
        let mut row = Map::new();
        row.insert("route".into(), r["route"].clone());
        row.insert("samples".into(), u(r, "samples").into());
        at_stat(r, &mut row);
        row
    })
    .collect();
    let devices = rows(
        ch,
        &format!(
            "SELECT ifNull(device, 'unknown') AS d, count() AS samples FROM {v} GROUP BY d \
             ORDER BY samples DESC, d"
        ),
    )
    .await?
    .iter()
    .map(|r| {
        let mut row = Map::new();
        row.insert("device".into(), r["d"].clone());
        row.insert("samples".into(), u(r, "samples").into());
        row
    })
    .collect();
    let b = w.bucket_us().max(1);
    let series = rows(
        ch,
        &format!(
            "SELECT t, samples, {outer} FROM (SELECT intDiv(event_time, {b}) * {b} AS t, count() AS samples, \
             {inner} FROM {v} GROUP BY t) ORDER BY t"
        ),
    )
    .await?
    .iter()
    .map(|r| {
        let mut row = Map::new();
        row.insert("t".into(), iso_us(r["t"].as_i64().unwrap_or(0)).into());
        row.insert("samples".into(), u(r, "samples").into());
        at_stat(r, &mut row);
        row
    })
    .collect();
    let floats: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("toString({0}) AS {0}_t", m.column()))
        .collect();
    let page = rows(
        ch,
        &format!(
            "SELECT id, user_id, session_id, route, path, device, {}, metric, metric_id, navigation_type, \
             attribution, user_agent, connection, ip, timestamp, created_at, event_time FROM {v} \
             ORDER BY event_time DESC, id LIMIT {} OFFSET {}",
            floats.join(", "),
            w.limit,
            w.offset
        ),
    )
    .await?
    .into_iter()
    .map(row_json)
    .collect();
    let site = groups(ch, w, f, stat).await?;
    let total = totals.samples;
    Ok(w.report(
        series,
        Stats {
            stat,
            totals,
            score: site.score,
            vitals,
            routes,
            devices,
        },
        page,
        total,
    ))
}

/// One stored sample as DuckDB's `query_json` shows it (`filter::COLUMNS`).
fn row_json(r: Value) -> JsonRow {
    let mut m = Map::new();
    for k in ["id", "user_id", "session_id", "route", "path", "device"] {
        m.insert(k.into(), r[k].clone());
    }
    for metric in Metric::ALL {
        let c = metric.column();
        m.insert(c.into(), number(f(&r, &format!("{c}_t"))));
    }
    for k in [
        "metric",
        "metric_id",
        "navigation_type",
        "attribution",
        "user_agent",
        "connection",
        "ip",
        "timestamp",
    ] {
        let value = match (k, r[k].as_str()) {
            ("attribution", Some(s)) => serde_json::from_str(s).unwrap_or_else(|_| s.into()),
            _ => r[k].clone(),
        };
        m.insert(k.into(), value);
    }
    for k in ["created_at", "event_time"] {
        m.insert(k.into(), iso_us(r[k].as_i64().unwrap_or(0)).into());
    }
    m
}

pub async fn groups(
    ch: &ClickHouse,
    w: &Window,
    f: &Filter,
    stat: Stat,
) -> Result<Groups, StoreError> {
    let v = latest(ch, w, f);
    let (inner, outer) = aggregates(&Metric::ALL, stat.q(), true);
    let groups = rows(
        ch,
        &format!(
            "SELECT route, d, {outer} FROM (SELECT route, ifNull(device, 'unknown') AS d, {inner} \
             FROM {v} GROUP BY route, d)"
        ),
    )
    .await?
    .iter()
    .map(|r| {
        let device = r["d"]
            .as_str()
            .and_then(Device::parse)
            .unwrap_or(Device::Unknown);
        let route = r["route"].as_str().map(str::to_string);
        Group::new(route, device, vital_stats(r, stat))
    })
    .collect();
    Ok(Groups::new(w, stat, groups))
}

pub async fn histogram(
    ch: &ClickHouse,
    w: &Window,
    f: &Filter,
    m: Metric,
) -> Result<Histogram, StoreError> {
    let v = latest(ch, w, f);
    let (width, n) = bin_layout(m);
    let c = m.column();
    let last = n - 1;
    // As `exact::histogram`: bin i holds (i·width, (i+1)·width], zero in bin 0.
    let sql = format!(
        "SELECT toInt32(least(greatest(ceil({c} / {width} - 1e-9) - 1, 0), {last})) AS b, count() AS n \
         FROM {v} WHERE {c} IS NOT NULL GROUP BY b"
    );
    let mut counts = vec![0u64; n as usize];
    for r in rows(ch, &sql).await? {
        let b = r["b"].as_i64().unwrap_or(0).max(0) as usize;
        if let Some(slot) = counts.get_mut(b) {
            *slot += u(&r, "n");
        }
    }
    Ok(Histogram::new(w, m, &counts))
}
