//! Reads over `performance_metrics`, newest report per metric instance only: percentiles,
//! ratings, the score, routes by device, histograms, the trend and the newest samples.

use std::collections::BTreeMap;

use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};
use serde::Serialize;

use super::rollup::{self, Grain, Hist, Hists};
use super::score::{score, weight};
use super::{Device, Metric, Rating};
use crate::http::window::{Report, Window};
use crate::store::{query_json, ts_param, JsonRow, Store, StoreError};

const COLUMNS: &str = "id::VARCHAR AS id, user_id::VARCHAR AS user_id, session_id, route, path, device, \
    lcp, inp, cls, fcp, ttfb, fid, metric, metric_id, navigation_type, attribution, user_agent, connection, ip, \
    timestamp, created_at";
const TOP_ROUTES: u32 = 20;
/// The route × device groups a routes answer lists at most, highest opportunity first.
const MAX_GROUPS: usize = 200;

/// Which percentile to report; p75 is what Core Web Vitals are judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    P50,
    P75,
    P90,
    P95,
    P99,
}

impl Stat {
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "p50" => Stat::P50,
            "p75" => Stat::P75,
            "p90" => Stat::P90,
            "p95" => Stat::P95,
            "p99" => Stat::P99,
            _ => return None,
        })
    }

    fn q(self) -> f64 {
        match self {
            Stat::P50 => 0.5,
            Stat::P75 => 0.75,
            Stat::P90 => 0.9,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
        }
    }
}

/// What narrows a read besides the time window.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub route: Option<String>,
    pub device: Option<Device>,
}

/// `WITH ... v AS (...)`: the window's rows, the newest report per (metric_id, metric).
/// Only keys that have a row marked `rereport` can hold superseded rows, so only those
/// are grouped; every other row passes through a hash join that finds nothing.
pub fn latest(w: &Window, f: &Filter) -> (String, Vec<DbValue>) {
    let mut sql = String::from(
        "WITH w AS (SELECT * FROM performance_metrics WHERE created_at >= ? AND created_at < ?",
    );
    let mut params = vec![ts_param(w.from_us()), ts_param(w.to_us())];
    if let Some(r) = &f.route {
        sql.push_str(" AND route = ?");
        params.push(DbValue::Text(r.clone()));
    }
    if let Some(d) = f.device {
        sql.push_str(" AND device = ?");
        params.push(DbValue::Text(d.as_str().into()));
    }
    sql.push_str(
        "), \
         rk AS (SELECT DISTINCT metric_id, coalesce(metric, '') AS metric FROM w WHERE rereport), \
         sup AS (SELECT w.metric_id, coalesce(w.metric, '') AS metric, arg_max(w.id, w.created_at) AS keep \
                 FROM w JOIN rk ON w.metric_id = rk.metric_id AND coalesce(w.metric, '') = rk.metric GROUP BY ALL), \
         v AS (SELECT w.* FROM w LEFT JOIN sup ON w.metric_id = sup.metric_id AND coalesce(w.metric, '') = sup.metric \
               WHERE sup.keep IS NULL OR sup.keep = w.id) ",
    );
    (sql, params)
}

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

/// The metrics the overview shows: the Core Web Vitals and their two helpers.
const HEADLINE: [Metric; 5] = [
    Metric::Lcp,
    Metric::Inp,
    Metric::Cls,
    Metric::Fcp,
    Metric::Ttfb,
];

pub async fn headline(store: &Store, window: Window) -> Result<Headline, StoreError> {
    store
        .query(move |conn| {
            let cols: Vec<String> = HEADLINE
                .iter()
                .map(|m| format!("quantile_cont({0}, 0.75), count({0})", m.column()))
                .collect();
            // Re-reported metrics count once: the newest report of each, as the reads.
            let (with, params) = latest(&window, &Filter::default());
            Ok(conn.query_row(
                &format!("{with} SELECT {} FROM v", cols.join(", ")),
                params_from_iter(params.iter()),
                |r| {
                    let mut out = BTreeMap::new();
                    for (i, m) in HEADLINE.iter().enumerate() {
                        let p75: Option<f64> = r.get(i * 2)?;
                        let (good, poor) = m.thresholds();
                        out.insert(
                            m.column(),
                            Vital {
                                p75,
                                rating: p75.map(|v| m.rate(v)),
                                count: r.get(i * 2 + 1)?,
                                thresholds: [good, poor],
                            },
                        );
                    }
                    Ok(out)
                },
            )?)
        })
        .await
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

#[derive(Debug, Clone, Serialize)]
pub struct VitalStats {
    pub count: u64,
    /// The value at the requested percentile (`stat`).
    pub value: Option<f64>,
    pub p75: Option<f64>,
    /// Shares of samples rated good, needs-improvement and poor, 0..1.
    pub good_share: Option<f64>,
    pub needs_improvement_share: Option<f64>,
    pub poor_share: Option<f64>,
    /// The rating of `value`: at p75, how the site does for three visits in four.
    pub rating: Option<Rating>,
    pub thresholds: [f64; 2],
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
        let value: Option<f64> = r.get(at)?;
        let count: u64 = r.get(at + 1)?;
        let good: u64 = r.get(at + 2)?;
        let poor: u64 = r.get(at + 3)?;
        let share = |n: u64| (count > 0).then(|| n as f64 / count as f64);
        let (g, p) = m.thresholds();
        out.insert(
            m.column(),
            VitalStats {
                count,
                value,
                p75: (stat == Stat::P75).then_some(value).flatten(),
                good_share: share(good),
                needs_improvement_share: share(count - good - poor),
                poor_share: share(poor),
                rating: value.map(|v| m.rate(v)),
                thresholds: [g, p],
            },
        );
    }
    Ok(out)
}

pub type Summary = Report<Stats>;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub stat: Stat,
    pub totals: Totals,
    /// 0..100, see `score`: the traffic-weighted mean of the route × device scores.
    pub score: Option<f64>,
    /// Keyed by metric name (`lcp`, `inp`, ...).
    pub vitals: BTreeMap<&'static str, VitalStats>,
    /// Busiest routes first, with each metric at `stat`.
    pub routes: Vec<JsonRow>,
    /// Samples per device class.
    pub devices: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub samples: u64,
    /// Not counted over roll-up windows (they would need every row).
    pub sessions: Option<u64>,
    pub users: Option<u64>,
    pub routes: u64,
}

pub async fn summary(
    store: &Store,
    window: Window,
    filter: Filter,
    stat: Stat,
    exact_max: u64,
) -> Result<Summary, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => summary_rolled(conn, &window, &filter, stat, done),
            None => summary_sync(conn, &window, &filter, stat),
        })
        .await
}

/// Where the roll-up ends, when `w` holds more than `exact_max` samples it covers: then
/// reads use it; otherwise they compute exactly from the rows.
fn rollup_end(conn: &Connection, w: &Window, exact_max: u64) -> Result<Option<i64>, StoreError> {
    let Some(done) = rollup::done_until(conn)? else {
        return Ok(None);
    };
    if done <= w.from_us() - 86_400_000_000 {
        return Ok(None);
    }
    Ok((rollup::samples(conn, w, done)? > exact_max).then_some(done))
}

fn summary_sync(
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
        &format!("{with} SELECT coalesce(device, 'unknown') AS device, count(*) AS samples FROM v GROUP BY 1 ORDER BY 2 DESC"),
        params_from_iter(params.iter()),
        &[],
    )?;
    let bucket = w.bucket_us().max(1);
    let series = query_json(
        conn,
        &format!(
            "{with} SELECT make_timestamp((epoch_us(created_at::TIMESTAMP) // {bucket}) * {bucket}) AS t, \
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
        &format!("{with} SELECT {COLUMNS} FROM v ORDER BY created_at DESC, id LIMIT ? OFFSET ?"),
        params_from_iter(p.iter()),
        &["attribution"],
    )?;
    let site = groups_exact(conn, w, f, stat)?;
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

/// One route on one device class.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub route: Option<String>,
    pub device: Device,
    /// Page views: the most samples any one metric has in this group.
    pub views: u64,
    pub score: Option<f64>,
    /// Site-score points gained if this group scored 100: its traffic share × (100 - score).
    pub opportunity: Option<f64>,
    pub vitals: BTreeMap<&'static str, VitalStats>,
}

#[derive(Debug, Serialize)]
pub struct Groups {
    pub range: crate::http::window::WindowJson,
    pub stat: Stat,
    pub score: Option<f64>,
    /// Highest opportunity first.
    pub groups: Vec<Group>,
}

pub async fn groups(
    store: &Store,
    window: Window,
    filter: Filter,
    stat: Stat,
    exact_max: u64,
) -> Result<Groups, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => {
                let hists = rollup::histograms(conn, &window, &filter, done, Grain::Groups)?;
                Ok(finish_groups(&window, stat, groups_from(&hists, stat)))
            }
            None => groups_exact(conn, &window, &filter, stat),
        })
        .await
}

fn groups_exact(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    stat: Stat,
) -> Result<Groups, StoreError> {
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
        let vitals = vital_stats(r, 2, stat)?;
        let values: Vec<(Metric, f64)> = Metric::ALL
            .iter()
            .filter_map(|m| vitals[m.column()].value.map(|v| (*m, v)))
            .collect();
        let views = Metric::ALL
            .iter()
            .filter(|m| weight(**m) > 0.0)
            .map(|m| vitals[m.column()].count)
            .max()
            .unwrap_or(0);
        groups.push(Group {
            route: r.get(0)?,
            device,
            views,
            score: score(device, &values),
            opportunity: None,
            vitals,
        });
    }
    Ok(finish_groups(w, stat, groups))
}

fn finish_groups(w: &Window, stat: Stat, mut groups: Vec<Group>) -> Groups {
    let site = rank(&mut groups);
    groups.truncate(MAX_GROUPS);
    Groups {
        range: w.json(),
        stat,
        score: site,
        groups,
    }
}

/// A metric's stats from its histogram (roll-up reads).
fn hist_stats(h: &Hist, m: Metric, stat: Stat) -> VitalStats {
    let count = h.count();
    let value = h.quantile(stat.q());
    let (good, poor) = h.good_poor();
    let share = |n: u64| (count > 0).then(|| n.min(count) as f64 / count as f64);
    let (g, p) = m.thresholds();
    VitalStats {
        count,
        value,
        p75: (stat == Stat::P75).then_some(value).flatten(),
        good_share: share(good),
        needs_improvement_share: share(count.saturating_sub(good + poor)),
        poor_share: share(poor),
        rating: value.map(|v| m.rate(v)),
        thresholds: [g, p],
    }
}

fn vitals_of(hs: &[Hist; 6], stat: Stat) -> BTreeMap<&'static str, VitalStats> {
    Metric::ALL
        .iter()
        .zip(hs)
        .map(|(m, h)| (m.column(), hist_stats(h, *m, stat)))
        .collect()
}

fn group_of(route: Option<String>, device: Device, hs: &[Hist; 6], stat: Stat) -> Group {
    let vitals = vitals_of(hs, stat);
    let values: Vec<(Metric, f64)> = Metric::ALL
        .iter()
        .filter_map(|m| vitals[m.column()].value.map(|v| (*m, v)))
        .collect();
    let views = Metric::ALL
        .iter()
        .filter(|m| weight(**m) > 0.0)
        .map(|m| vitals[m.column()].count)
        .max()
        .unwrap_or(0);
    Group {
        route,
        device,
        views,
        score: score(device, &values),
        opportunity: None,
        vitals,
    }
}

fn groups_from(hists: &Hists, stat: Stat) -> Vec<Group> {
    hists
        .iter()
        .map(|((route, device, _), hs)| {
            let device = Device::parse(device).unwrap_or(Device::Unknown);
            group_of(route.clone(), device, hs, stat)
        })
        .collect()
}

fn merged<'a>(parts: impl Iterator<Item = &'a [Hist; 6]>) -> [Hist; 6] {
    let mut out: [Hist; 6] = Default::default();
    for hs in parts {
        for (a, b) in out.iter_mut().zip(hs) {
            a.merge(b);
        }
    }
    out
}

/// The summary from the roll-up: per-day trend, routes and devices from histograms; the
/// newest rows straight from the table (the newest reports, not deduplicated).
fn summary_rolled(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    stat: Stat,
    done: i64,
) -> Result<Summary, StoreError> {
    let cells = rollup::histograms(conn, w, f, done, Grain::Groups)?;
    let days = rollup::histograms(conn, w, f, done, Grain::Days)?;
    let groups = groups_from(&cells, stat);
    let site = finish_groups(w, stat, groups.clone());
    let all = merged(days.values());
    let vitals = vitals_of(&all, stat);
    let views = |g: &Group| g.views;
    let samples: u64 = groups.iter().map(views).sum();
    let q = stat.q();
    let at = |hs: &[Hist; 6], row: &mut JsonRow| {
        for (m, h) in Metric::ALL.iter().zip(hs) {
            row.insert(m.column().into(), h.quantile(q).into());
        }
    };
    let mut by_route: BTreeMap<Option<String>, Vec<&[Hist; 6]>> = BTreeMap::new();
    for ((route, _, _), hs) in &cells {
        by_route.entry(route.clone()).or_default().push(hs);
    }
    let mut routes: Vec<(u64, JsonRow)> = by_route
        .iter()
        .map(|(route, parts)| {
            let hs = merged(parts.iter().copied());
            let n = hs[0].count().max(hs[3].count()).max(hs[4].count());
            let mut row = JsonRow::new();
            row.insert("route".into(), route.clone().into());
            row.insert("samples".into(), n.into());
            at(&hs, &mut row);
            (n, row)
        })
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.0));
    let route_count = routes.len() as u64;
    let routes: Vec<JsonRow> = routes
        .into_iter()
        .take(TOP_ROUTES as usize)
        .map(|r| r.1)
        .collect();
    let mut devices: BTreeMap<String, u64> = BTreeMap::new();
    for g in &groups {
        *devices.entry(g.device.as_str().into()).or_default() += g.views;
    }
    let mut devices: Vec<JsonRow> = devices
        .into_iter()
        .map(|(d, n)| {
            let mut row = JsonRow::new();
            row.insert("device".into(), d.into());
            row.insert("samples".into(), n.into());
            row
        })
        .collect();
    devices.sort_by(|a, b| b["samples"].as_u64().cmp(&a["samples"].as_u64()));
    let mut days: Vec<(i64, &[Hist; 6])> = days.iter().map(|((_, _, t), hs)| (*t, hs)).collect();
    days.sort_by_key(|d| d.0);
    let series: Vec<JsonRow> = days
        .iter()
        .map(|(t, hs)| {
            let mut row = JsonRow::new();
            let when = chrono::DateTime::from_timestamp_micros(*t)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            row.insert("t".into(), when.into());
            row.insert("samples".into(), hs[0].count().into());
            at(hs, &mut row);
            row
        })
        .collect();
    let mut p = vec![ts_param(w.from_us()), ts_param(w.to_us())];
    let mut filters = String::new();
    if let Some(r) = &f.route {
        filters.push_str(" AND route = ?");
        p.push(DbValue::Text(r.clone()));
    }
    if let Some(d) = f.device {
        filters.push_str(" AND device = ?");
        p.push(DbValue::Text(d.as_str().into()));
    }
    p.push(DbValue::UInt(w.limit));
    p.push(DbValue::UInt(w.offset));
    let rows = query_json(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM performance_metrics WHERE created_at >= ? AND created_at < ?{filters} \
             ORDER BY created_at DESC, id LIMIT ? OFFSET ?"
        ),
        params_from_iter(p.iter()),
        &["attribution"],
    )?;
    let mut report = w.report(
        series,
        Stats {
            stat,
            totals: Totals {
                samples,
                sessions: None,
                users: None,
                routes: route_count,
            },
            score: site.score,
            vitals,
            routes,
            devices,
        },
        rows,
        samples,
    );
    report.bucket_seconds = 86_400;
    Ok(report)
}

/// Site score = Σ views·score / Σ views over scored groups; each group's opportunity is
/// what the site score would gain if that group scored 100. Sorts by opportunity.
fn rank(groups: &mut [Group]) -> Option<f64> {
    let total: u64 = groups
        .iter()
        .filter(|g| g.score.is_some())
        .map(|g| g.views)
        .sum();
    if total == 0 {
        return None;
    }
    let mut site = 0.0;
    for g in groups.iter_mut() {
        if let Some(s) = g.score {
            let share = g.views as f64 / total as f64;
            site += share * s;
            g.opportunity = Some(share * (100.0 - s));
        }
    }
    groups.sort_by(|a, b| {
        let o = |g: &Group| g.opportunity.unwrap_or(-1.0);
        o(b).total_cmp(&o(a))
            .then_with(|| b.views.cmp(&a.views))
            .then_with(|| a.route.cmp(&b.route))
    });
    Some(site)
}

/// Bins of a metric's distribution: `(from, to]`, with thresholds on bin edges.
#[derive(Debug, Serialize)]
pub struct Histogram {
    pub range: crate::http::window::WindowJson,
    pub metric: &'static str,
    pub thresholds: [f64; 2],
    pub count: u64,
    pub bins: Vec<Bin>,
}

#[derive(Debug, Serialize)]
pub struct Bin {
    pub from: f64,
    /// `None` for the last bin, which holds everything above `from`.
    pub to: Option<f64>,
    pub count: u64,
    pub rating: Rating,
}

/// (bin width, bins): every threshold is a multiple of the width.
fn bin_layout(m: Metric) -> (f64, u32) {
    match m {
        Metric::Lcp => (250.0, 24),
        Metric::Inp => (25.0, 32),
        Metric::Cls => (0.025, 20),
        Metric::Fcp => (200.0, 24),
        Metric::Ttfb => (100.0, 30),
        Metric::Fid => (25.0, 24),
    }
}

pub async fn histogram(
    store: &Store,
    window: Window,
    filter: Filter,
    metric: Metric,
    exact_max: u64,
) -> Result<Histogram, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => {
                let hists = rollup::histograms(conn, &window, &filter, done, Grain::Groups)?;
                let i = Metric::ALL.iter().position(|m| *m == metric).unwrap_or(0);
                let all = merged(hists.values());
                let (width, n) = bin_layout(metric);
                let mut counts = vec![0u64; n as usize];
                for (value, c) in all[i].values() {
                    let b = ((value / width - 1e-9).ceil() - 1.0).clamp(0.0, f64::from(n - 1));
                    counts[b as usize] += c;
                }
                Ok(bins_report(&window, metric, &counts))
            }
            None => histogram_sync(conn, &window, &filter, metric),
        })
        .await
}

fn histogram_sync(
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
    Ok(bins_report(w, m, &counts))
}

fn bins_report(w: &Window, m: Metric, counts: &[u64]) -> Histogram {
    let (width, n) = bin_layout(m);
    let last = n - 1;
    let bins = counts
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let from = i as f64 * width;
            let to = (i as u32 != last).then(|| (i + 1) as f64 * width);
            Bin {
                from: round(from),
                to: to.map(round),
                count,
                rating: m.rate(to.unwrap_or(f64::INFINITY) - width * 1e-6),
            }
        })
        .collect();
    let (g, p) = m.thresholds();
    Histogram {
        range: w.json(),
        metric: m.column(),
        thresholds: [g, p],
        count: counts.iter().sum(),
        bins,
    }
}

/// Bin edges such as 0.30000000000000004 printed as 0.3.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(views: u64, score: Option<f64>) -> Group {
        Group {
            route: Some(format!("/{views}")),
            device: Device::Desktop,
            views,
            score,
            opportunity: None,
            vitals: BTreeMap::new(),
        }
    }

    #[test]
    fn site_score_and_opportunity() {
        // 300 views at 50 and 100 views at 90: site (300·50 + 100·90) / 400 = 60.
        let mut g = vec![
            group(100, Some(90.0)),
            group(300, Some(50.0)),
            group(5, None),
        ];
        let site = rank(&mut g).unwrap();
        assert!((site - 60.0).abs() < 1e-9);
        assert_eq!(g[0].views, 300, "fixing the busy slow route gains most");
        assert!((g[0].opportunity.unwrap() - 0.75 * 50.0).abs() < 1e-9);
        assert!((g[1].opportunity.unwrap() - 0.25 * 10.0).abs() < 1e-9);
        assert_eq!(g[2].opportunity, None);
        // Gains add up to what a perfect site would gain.
        let gain: f64 = g.iter().filter_map(|g| g.opportunity).sum();
        assert!((site + gain - 100.0).abs() < 1e-9);
    }

    #[test]
    fn bins_put_thresholds_on_edges() {
        for m in Metric::ALL {
            let (width, n) = bin_layout(m);
            let (good, poor) = m.thresholds();
            for t in [good, poor] {
                let k = t / width;
                assert!((k - k.round()).abs() < 1e-9, "{m:?} {t}");
                assert!(k.round() < f64::from(n), "{m:?} {t} within the bins");
            }
        }
    }
}
