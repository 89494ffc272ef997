//! What the web-vitals reads answer, whichever path computed it: per-metric stats, the
//! summary, route × device groups ranked by opportunity, and histogram bins.

use std::collections::BTreeMap;

use serde::Serialize;

use super::filter::Stat;
use super::score::{score, weight};
use super::{Device, Metric, Rating};
use crate::http::window::{Report, Window, WindowJson};
use crate::store::JsonRow;

/// The routes a summary lists at most, busiest first.
pub const TOP_ROUTES: u32 = 20;
/// The route × device groups a routes answer lists at most, highest opportunity first.
const MAX_GROUPS: usize = 200;

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

impl VitalStats {
    /// `m`'s stats from its value at `stat` and its counts: all, good, poor.
    pub fn new(
        m: Metric,
        stat: Stat,
        value: Option<f64>,
        count: u64,
        good: u64,
        poor: u64,
    ) -> Self {
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

impl Group {
    /// The group with its views and score worked out from its metrics.
    pub fn new(
        route: Option<String>,
        device: Device,
        vitals: BTreeMap<&'static str, VitalStats>,
    ) -> Group {
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
}

#[derive(Debug, Serialize)]
pub struct Groups {
    pub range: WindowJson,
    pub stat: Stat,
    pub score: Option<f64>,
    /// Highest opportunity first.
    pub groups: Vec<Group>,
}

impl Groups {
    /// Ranks `groups` by opportunity, keeps the first few, and scores the site.
    pub fn new(w: &Window, stat: Stat, mut groups: Vec<Group>) -> Groups {
        let site = rank(&mut groups);
        groups.truncate(MAX_GROUPS);
        Groups {
            range: w.json(),
            stat,
            score: site,
            groups,
        }
    }
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
    // Floats are summed in one fixed order, whatever order the engine grouped in, so the
    // score is the same to the last bit on DuckDB, on ClickHouse and from run to run.
    groups.sort_by(|a, b| {
        a.route
            .cmp(&b.route)
            .then_with(|| a.device.as_str().cmp(b.device.as_str()))
    });
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
            .then_with(|| a.device.as_str().cmp(b.device.as_str()))
    });
    Some(site)
}

/// Bins of a metric's distribution: `(from, to]`, with thresholds on bin edges.
#[derive(Debug, Serialize)]
pub struct Histogram {
    pub range: WindowJson,
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
pub fn bin_layout(m: Metric) -> (f64, u32) {
    match m {
        Metric::Lcp => (250.0, 24),
        Metric::Inp => (25.0, 32),
        Metric::Cls => (0.025, 20),
        Metric::Fcp => (200.0, 24),
        Metric::Ttfb => (100.0, 30),
        Metric::Fid => (25.0, 24),
    }
}

impl Histogram {
    /// The histogram of `m` from its count per bin of `bin_layout(m)`.
    pub fn new(w: &Window, m: Metric, counts: &[u64]) -> Histogram {
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
