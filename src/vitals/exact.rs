//! Web-vitals reads computed exactly from the rows, each metric instance's newest report
//! only: for windows with few enough samples.

use std::collections::BTreeMap;

use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use serde::Serialize;

use super::filter::{latest, Filter, Stat, COLUMNS};
use super::stats::{
    bin_layout, Group, Groups, Histogram, Stats, Summary, Totals, VitalStats, TOP_ROUTES,
};
use super::{Device, Metric, Rating};
use crate::http::window::Window;
use crate::store::{query_json, StoreError};

/// What the dashboard's overview shows of one metric: p75 over every newest report.
#[derive(Debug, Serialize)]
pub struct Vital {
    pub p75: Option<f64>,
    pub rating: Option<Rating>,
    pub count: u64,
    pub thresholds: [f64; 2],
}

/// The overview's metrics, keyed by name (`lcp`, `inp`, ...).
pub type Headline = BTreeMap<&'static str, Vital>;

impl Vital {
    pub fn new(m: Metric, p75: Option<f64>, count: u64) -> Vital {
        let (good, poor) = m.thresholds();
        Vital {
            p75,
            rating: p75.map(|v| m.rate(v)),
            count,
            thresholds: [good, poor],
        }
    }
}

/// The metrics the overview shows: the Core Web Vitals and their two helpers.
pub const HEADLINE: [Metric; 5] = [
    Metric::Lcp,
    Metric::Inp,
    Metric::Cls,
    Metric::Fcp,
    Metric::Ttfb,
];

pub fn headline(conn: &Connection, w: &Window) -> Result<Headline, StoreError> {
    let cols: Vec<String> = HEADLINE
        .iter()
        .map(|m| format!("quantile_cont({0}, 0.75), count({0})", m.column()))
        .collect();
    // Re-reported metrics count once: the newest report of each, as the reads.
    let (with, params) = latest(w, &Filter::default());
    Ok(conn.query_row(
        &format!("{with} SELECT {} FROM v", cols.join(", ")),
        params_from_iter(params.iter()),
        |r| {
            let mut out = BTreeMap::new();
            for (i, m) in HEADLINE.iter().enumerate() {
                out.insert(m.column(), Vital::new(*m, r.get(i * 2)?, r.get(i * 2 + 1)?));
            }
            Ok(out)
        },
    )?)
}

/// `quantile, count, good count, poor count` of every metric, in `Metric::ALL` order.
fn metric_aggregates(q: f64) -> String {
    Metric::ALL
        .iter()
        .map(|m| {
            let (c, (good, poor)) = (m.column(), m.thresholds());
            format!(
                "quantile_cont({c}, {q}), count({c}), count(*) FILTER ({c} <= {good}), count(*) FILTER ({c} > {poor})"
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the four aggregates of every metric starting at column `base`.
fn vital_stats(
    r: &duckdb::Row<'_>,
    base: usize,
    stat: Stat,
) -> duckdb::Result<BTreeMap<&'static str, VitalStats>> {
    let mut out = BTreeMap::new();
    for (i, m) in Metric::ALL.iter().enumerate() {
        let at = base + i * 4;
        out.insert(
            m.column(),
            VitalStats::new(
                *m,
                stat,
                r.get(at)?,
                r.get(at + 1)?,
                r.get(at + 2)?,
                r.get(at + 3)?,
            ),
        );
    }
    Ok(out)
}

pub fn summary(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    stat: Stat,
) -> Result<Summary, StoreError> {
    let (with, params) = latest(w, f);
    let q = stat.q();
    let sql = format!(
        "{with} SELECT count(*), count(DISTINCT session_id), count(DISTINCT user_id), count(DISTINCT route), {} FROM v",
        metric_aggregates(q)
    );
    let (totals, vitals) = conn.query_row(&sql, params_from_iter(params.iter()), |r| {
        let totals = Totals {
            samples: r.get(0)?,
            sessions: Some(r.get(1)?),
            users: Some(r.get(2)?),
            routes: r.get(3)?,
        };
        Ok((totals, vital_stats(r, 4, stat)?))
    })?;
    let at: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("quantile_cont({0}, {q}) AS {0}", m.column()))
        .collect();
    let mut p = params.clone();
    p.push(DbValue::UInt(TOP_ROUTES));
    let routes = query_json(
        conn,
        &format!(
            "{with} SELECT route, count(*) AS samples, {} FROM v GROUP BY route ORDER BY samples DESC, route LIMIT ?",
            at.join(", ")
        ),
        params_from_iter(p.iter()),
        &[],
    )?;
    let devices = query_json(
        conn,
        &format!("{with} SELECT coalesce(device, 'unknown') AS device, count(*) AS samples FROM v GROUP BY 1 ORDER BY 2 DESC, 1"),
        params_from_iter(params.iter()),
        &[],
    )?;
    let bucket = w.bucket_us().max(1);
    let series = query_json(
        conn,
        &format!(
            "{with} SELECT make_timestamp((epoch_us(event_time::TIMESTAMP) // {bucket}) * {bucket}) AS t, \
             count(*) AS samples, {} FROM v GROUP BY 1 ORDER BY 1",
            at.join(", ")
        ),
        params_from_iter(params.iter()),
        &[],
    )?;
    let mut p = params.clone();
    p.push(DbValue::UInt(w.limit));
    p.push(DbValue::UInt(w.offset));
    let rows = query_json(
        conn,
        &format!("{with} SELECT {COLUMNS} FROM v ORDER BY event_time DESC, id LIMIT ? OFFSET ?"),
        params_from_iter(p.iter()),
        &["attribution"],
    )?;
    let site = groups(conn, w, f, stat)?;
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
        rows,
        total,
    ))
}

pub fn groups(conn: &Connection, w: &Window, f: &Filter, stat: Stat) -> Result<Groups, StoreError> {
    let (with, params) = latest(w, f);
    let sql = format!(
        "{with} SELECT route, coalesce(device, 'unknown'), {} FROM v GROUP BY ALL",
        metric_aggregates(stat.q())
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut groups = Vec::new();
    while let Some(r) = rows.next()? {
        let device: String = r.get(1)?;
        let device = Device::parse(&device).unwrap_or(Device::Unknown);
        groups.push(Group::new(r.get(0)?, device, vital_stats(r, 2, stat)?));
    }
    Ok(Groups::new(w, stat, groups))
}

pub fn histogram(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    m: Metric,
) -> Result<Histogram, StoreError> {
    let (with, params) = latest(w, f);
    let (width, n) = bin_layout(m);
    let c = m.column();
    let last = n - 1;
    // Bin i holds (i·width, (i+1)·width]; zero goes to bin 0. The small epsilon keeps a
    // value such as 0.1 / 0.025 = 4.000000000000001 in the bin its decimal says.
    let sql = format!(
        "{with} SELECT least(greatest(ceil({c} / {width} - 1e-9) - 1, 0), {last})::INTEGER AS b, count(*) \
         FROM v WHERE {c} IS NOT NULL GROUP BY 1"
    );
    let mut counts = vec![0u64; n as usize];
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    while let Some(r) = rows.next()? {
        let b: i32 = r.get(0)?;
        let k: u64 = r.get(1)?;
        if let Some(slot) = counts.get_mut(b.max(0) as usize) {
            *slot += k;
        }
    }
    Ok(Histogram::new(w, m, &counts))
}
