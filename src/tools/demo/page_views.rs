//! Page-view web vitals in bulk, for `growth-stack demo --page-views N` and the vitals
//! benchmark: realistic routes, devices and distributions, with CLS/INP re-reports.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use uuid::Uuid;

use crate::store::{Batch, PerformanceRow, Store, StoreError};
use crate::vitals::Device;

const CHUNK: u64 = 50_000;
const DAY_US: i64 = 86_400_000_000;

/// (route template, a concrete path pattern with `{}` for an id, LCP median in ms, weight).
const PAGES: &[(&str, &str, f64, u32)] = &[
    ("/", "/", 1500.0, 20),
    ("/recipes", "/recipes", 2000.0, 18),
    ("/recipes/:id", "/recipes/{}", 2900.0, 25),
    ("/meal-plan", "/meal-plan", 2300.0, 12),
    ("/shopping-list", "/shopping-list", 1700.0, 8),
    ("/ai/generate", "/ai/generate", 3400.0, 6),
    ("/pricing", "/pricing", 1400.0, 4),
    ("/settings", "/settings", 1300.0, 3),
    ("/users/:id/plans/:id", "/users/{}/plans/{}", 2600.0, 4),
];
const USER_AGENTS: &[(&str, Device)] = &[
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36", Device::Desktop),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36", Device::Desktop),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Device::Mobile),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36", Device::Mobile),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Device::Tablet),
];
const CONNECTIONS: &[&str] = &["4g", "4g", "4g", "3g", "wifi"];
/// Share of page views whose CLS or INP changed after the first hide, so they report again.
const REREPORT_SHARE: f64 = 0.1;

/// Writes `page_views` page views spread over `days` up to now, oldest first; returns
/// the rows written (page views plus re-reports).
pub async fn generate(
    store: &Store,
    page_views: u64,
    days: u32,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = chrono::Utc::now().timestamp_micros();
    let span = i64::from(days.max(1)) * DAY_US;
    let total_weight: u32 = PAGES.iter().map(|p| p.3).sum();
    let mut written = 0;
    let mut done = 0;
    while done < page_views {
        let n = (page_views - done).min(CHUNK);
        let mut rows = Vec::with_capacity((n as f64 * (1.0 + REREPORT_SHARE)) as usize);
        for k in 0..n {
            // Time order, as real traffic arrives, so zone maps can skip old row groups.
            let t = now - span + ((done + k) as f64 / page_views as f64 * span as f64) as i64;
            page_view(&mut rng, t, total_weight, &mut rows);
        }
        written += rows.len() as u64;
        store.append(Batch::Performance(rows)).await?;
        done += n;
        progress(n);
    }
    Ok(written)
}

fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng))
}

fn page_view(rng: &mut StdRng, t: i64, total_weight: u32, rows: &mut Vec<PerformanceRow>) {
    let mut pick = rng.gen_range(0..total_weight);
    let &(route, pattern, lcp_median, _) = PAGES
        .iter()
        .find(|p| {
            let hit = pick < p.3;
            pick = pick.saturating_sub(p.3);
            hit
        })
        .unwrap_or(&PAGES[0]);
    let mut path = pattern.to_string();
    while path.contains("{}") {
        path = path.replacen("{}", &rng.gen_range(1..5000).to_string(), 1);
    }
    let (ua, device) = USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())];
    let slow = if device == Device::Desktop { 0.7 } else { 1.2 };
    let interacted = rng.gen::<f64>() < 0.7;
    let row = PerformanceRow {
        id: Uuid::from_u128(rng.gen()),
        user_id: None,
        session_id: Some(format!("s_{:012x}", rng.gen::<u64>() & 0xffff_ffff_ffff)),
        route: Some(route.into()),
        lcp: Some(lognormal(rng, lcp_median * slow, 0.5)),
        inp: interacted.then(|| lognormal(rng, 120.0 * slow, 0.7)),
        cls: Some(lognormal(rng, 0.03, 1.2).min(3.0)),
        fcp: Some(lognormal(rng, lcp_median * 0.55 * slow, 0.45)),
        ttfb: Some(lognormal(rng, 350.0 * slow, 0.6)),
        fid: None,
        user_agent: Some(ua.into()),
        connection: Some(CONNECTIONS[rng.gen_range(0..CONNECTIONS.len())].into()),
        ip: Some(format!("198.51.{}.0", rng.gen_range(0..=255))),
        timestamp: t / 1000,
        created_at: t,
        metric_id: Some(format!("pv-{:016x}", rng.gen::<u64>())),
        metric: None,
        rereport: false,
        navigation_type: Some(
            if rng.gen::<f64>() < 0.08 {
                "reload"
            } else {
                "navigate"
            }
            .into(),
        ),
        device: Some(device.as_str().into()),
        path: Some(path),
        attribution: None,
        event_time: None,
    };
    if rng.gen::<f64>() < REREPORT_SHARE {
        // Hidden once, then used again: CLS and INP grew before the second hide.
        let mut again = row.clone();
        again.id = Uuid::from_u128(rng.gen());
        again.rereport = true;
        again.cls = row.cls.map(|c| c + lognormal(rng, 0.02, 1.0));
        again.inp = Some(
            row.inp
                .unwrap_or(0.0)
                .max(lognormal(rng, 150.0 * slow, 0.6)),
        );
        again.created_at = t + rng.gen_range(1_000_000..600_000_000);
        again.timestamp = again.created_at / 1000;
        rows.push(row);
        rows.push(again);
    } else {
        rows.push(row);
    }
}
