//! Web-vitals reads from the roll-up's histograms: for long windows over many samples,
//! where the exact path would scan every row. Values are within 2% of the exact ones.

use std::collections::BTreeMap;

use duckdb::types::Value as DbValue;
use duckdb::{params_from_iter, Connection};

use super::exact::{Headline, Vital, HEADLINE};
use super::filter::{Filter, Stat, COLUMNS};
use super::rollup::{self, Grain, Hist, Hists};
use super::stats::{
    bin_layout, Group, Groups, Histogram, Stats, Summary, Totals, VitalStats, TOP_ROUTES,
};
use super::{Device, Metric};
use crate::http::window::Window;
use crate::store::{query_json, ts_param, JsonRow, StoreError};

/// A metric's stats from its histogram.
fn hist_stats(h: &Hist, m: Metric, stat: Stat) -> VitalStats {
    let (good, poor) = h.good_poor();
    VitalStats::new(m, stat, h.quantile(stat.q()), h.count(), good, poor)
}

fn vitals_of(hs: &[Hist; 6], stat: Stat) -> BTreeMap<&'static str, VitalStats> {
    Metric::ALL
        .iter()
        .zip(hs)
        .map(|(m, h)| (m.column(), hist_stats(h, *m, stat)))
        .collect()
}

fn groups_from(hists: &Hists, stat: Stat) -> Vec<Group> {
    hists
        .iter()
        .map(|((route, device, _), hs)| {
            let device = Device::parse(device).unwrap_or(Device::Unknown);
            Group::new(route.clone(), device, vitals_of(hs, stat))
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

/// The overview's p75 of each headline metric over `w`, from the per-day histograms.
pub fn headline(conn: &Connection, w: &Window, done: i64) -> Result<Headline, StoreError> {
    let days = rollup::histograms(conn, w, &Filter::default(), done, Grain::Days)?;
    let all = merged(days.values());
    Ok(HEADLINE
        .iter()
        .filter_map(|m| {
            let i = Metric::ALL.iter().position(|x| x == m)?;
            Some((
                m.column(),
                Vital::new(*m, all[i].quantile(0.75), all[i].count()),
            ))
        })
        .collect())
}

/// Route × device groups over `w`, the roll-up holding whole hours up to `done`.
pub fn groups(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    stat: Stat,
    done: i64,
) -> Result<Groups, StoreError> {
    let hists = rollup::histograms(conn, w, f, done, Grain::Groups)?;
    Ok(Groups::new(w, stat, groups_from(&hists, stat)))
}

/// `m`'s histogram over `w`: each roll-up bucket falls in the bin its value lies in.
pub fn histogram(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    m: Metric,
    done: i64,
) -> Result<Histogram, StoreError> {
    let hists = rollup::histograms(conn, w, f, done, Grain::Groups)?;
    let i = Metric::ALL.iter().position(|x| *x == m).unwrap_or(0);
    let all = merged(hists.values());
    let (width, n) = bin_layout(m);
    let mut counts = vec![0u64; n as usize];
    for (value, c) in all[i].values() {
        let b = ((value / width - 1e-9).ceil() - 1.0).clamp(0.0, f64::from(n - 1));
        counts[b as usize] += c;
    }
    Ok(Histogram::new(w, m, &counts))
}

/// The summary from the roll-up: per-day trend, routes and devices from histograms; the
/// newest rows straight from the table (the newest reports, not deduplicated).
pub fn summary(
    conn: &Connection,
    w: &Window,
    f: &Filter,
    stat: Stat,
    done: i64,
) -> Result<Summary, StoreError> {
    let cells = rollup::histograms(conn, w, f, done, Grain::Groups)?;
    let days = rollup::histograms(conn, w, f, done, Grain::Days)?;
    let groups = groups_from(&cells, stat);
    let site = Groups::new(w, stat, groups.clone());
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
    let (filters, extra) = f.sql();
    let mut p = vec![ts_param(w.from_us()), ts_param(w.to_us())];
    p.extend(extra);
    p.push(DbValue::UInt(w.limit));
    p.push(DbValue::UInt(w.offset));
    let rows = query_json(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM performance_metrics WHERE event_time >= ? AND event_time < ?{filters} \
             ORDER BY event_time DESC, id LIMIT ? OFFSET ?"
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
