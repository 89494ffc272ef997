//! `growth-stack bench --vitals`: web-vitals beacon ingest against a fresh server, then
//! (with `--vitals-data`, a data dir from `demo --page-views N`) the reads the Performance
//! page makes over 30 days, each timed many times against a real server process.

use std::path::Path;
use std::time::{Duration, Instant};

use super::client::{
    get_json, http_client, load_url, percentiles, print_phase, send, BenchError, Server,
};
use super::ingest::bodies as event_bodies;
use crate::cli::BenchArgs;

/// Timed repetitions of each read.
const READS: usize = 21;
/// Beacons come from browsers: ingest stores their agent and derives the device class.
const BROWSER_UA: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

pub async fn run(args: &BenchArgs) -> Result<(), BenchError> {
    println!(
        "growth-stack bench --vitals: {} beacons, {} connections, {} cores",
        args.beacons,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    ingest(args).await?;
    if let Some(dir) = &args.vitals_data {
        reads(dir).await?;
    }
    Ok(())
}

/// One report per beacon, as browsers send them: half our tracker's page-view reports,
/// half web-vitals objects, all as text/plain.
fn bodies(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let v = if i % 2 == 0 {
                serde_json::json!({
                    "metricId": format!("pv-bench-{i}"), "report": 1, "path": format!("/recipes/{}", i % 900),
                    "lcp": 1200.0 + (i % 3000) as f64, "fcp": 700.0 + (i % 900) as f64, "ttfb": 80.0 + (i % 400) as f64,
                    "cls": (i % 30) as f64 / 100.0, "inp": 40.0 + (i % 500) as f64,
                    "navigationType": "navigate", "sessionId": format!("s{}", i / 5), "connection": "4g",
                })
            } else {
                let name = ["LCP", "INP", "CLS", "FCP", "TTFB"][(i % 5) as usize];
                serde_json::json!({
                    "name": name, "value": (i % 700) as f64 / 7.0,
                    "delta": (i % 700) as f64 / 7.0, "id": format!("v5-bench-{i}"), "rating": "good",
                    "navigationType": "navigate", "url": format!("https://app.example/plan/{}", i % 50),
                })
            };
            v.to_string()
        })
        .collect()
}

async fn ingest(args: &BenchArgs) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(&dir.path().join("server")).await?;
    let client = http_client(args.concurrency);
    let url = format!("{}/api/analytics/performance", server.url);
    let phase = load_url(
        url,
        "vitals beacons",
        bodies(args.beacons),
        1,
        args.concurrency,
        Some(BROWSER_UA),
    )
    .await?;
    print_phase(&phase);
    // The same number of single-event beacons on the same server, for a side-by-side ratio.
    let events = load_url(
        format!("{}/api/analytics/events", server.url),
        "event beacons",
        event_bodies(args.beacons as usize, 1, args.anonymous),
        1,
        args.concurrency,
        Some(BROWSER_UA),
    )
    .await?;
    print_phase(&events);
    println!(
        "ratio vitals / event beacons: {:.2}",
        phase.events_per_sec() / events.events_per_sec()
    );
    let v = get_json(
        &client,
        &format!("{}/api/analytics/performance?range=1h&limit=1", server.url),
    )
    .await?;
    let stored = v["totals"]["samples"].as_u64().unwrap_or(0);
    server.stop().await?;
    if stored != phase.events {
        return Err(BenchError::Failed(format!(
            "{} beacons acknowledged but {stored} reports stored",
            phase.events
        )));
    }
    println!("verified: all {stored} acknowledged reports are in the database");
    Ok(())
}

/// The Performance page's reads over 30 days on an existing data dir, one after another.
async fn reads(data_dir: &Path) -> Result<(), BenchError> {
    let server = Server::start(data_dir).await?;
    let client = http_client(1);
    let base = &server.url;
    let v = get_json(
        &client,
        &format!("{base}/api/analytics/performance/routes?range=30d"),
    )
    .await?;
    let groups = v["groups"].as_array().map_or(0, Vec::len);
    let views: u64 = v["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["views"].as_u64()).sum())
        .unwrap_or(0);
    println!(
        "data: {} — {views} page views in the last 30 days, {groups} route × device groups, site score {:.1}",
        data_dir.display(),
        v["score"].as_f64().unwrap_or(f64::NAN)
    );
    for (name, path) in [
        (
            "p75 route × device",
            "/api/analytics/performance/routes?range=30d",
        ),
        (
            "p95 route × device",
            "/api/analytics/performance/routes?range=30d&stat=p95",
        ),
        ("summary (page)", "/api/analytics/performance?range=30d"),
        (
            "histogram LCP",
            "/api/analytics/performance/histogram?range=30d&metric=lcp",
        ),
        (
            "one route, mobile",
            "/api/analytics/performance/routes?range=30d&route=/recipes/:id&device=mobile",
        ),
    ] {
        let mut times = Vec::with_capacity(READS);
        for _ in 0..READS {
            let t = Instant::now();
            let (status, body) =
                send(&client, "GET", &format!("{base}{path}"), String::new()).await?;
            if status != 200 {
                return Err(BenchError::Failed(format!(
                    "{path} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            times.push(t.elapsed());
        }
        let (p50, p99) = percentiles(&mut times);
        let max = times.iter().max().copied().unwrap_or(Duration::ZERO);
        println!(
            "{name:<22} p50 {p50:>8.1} ms   p99 {p99:>8.1} ms   max {:>8.1} ms   ({READS} reads over 30 days)",
            max.as_secs_f64() * 1000.0
        );
    }
    println!("RSS after reads: {:.1} MB", server.rss_mb().unwrap_or(0.0));
    server.stop().await?;
    Ok(())
}
