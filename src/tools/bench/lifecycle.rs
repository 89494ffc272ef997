//! `bench --lifecycle DIR`: on a file filled by `demo --days 30`, export of every event to
//! Parquet, an online backup over HTTP and its restore, then a prune of 20 of the 30 days
//! (on the restored copy) while beacons are ingested, against beacons alone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{
    get_json, http_client, load_url, percentiles, print_phase, request, send_as, BenchError, Server,
};
use crate::app;
use crate::config::Config;
use crate::lifecycle::{self, Format, Span};
use crate::store::Stream;

const MB: f64 = 1024.0 * 1024.0;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub async fn run(
    config: &Config,
    data_dir: &Path,
    beacons: u64,
    concurrency: usize,
) -> Result<(), BenchError> {
    let db = data_dir.join("growth.duckdb");
    if !db.exists() {
        return Err(BenchError::Failed(format!(
            "{} does not exist; fill it first: growth-stack demo --events 10000000 --days 30 --data-dir {}",
            db.display(),
            data_dir.display()
        )));
    }
    println!(
        "growth-stack bench --lifecycle {}: {:.0} MB file, {} cores",
        data_dir.display(),
        size(&db) as f64 / MB,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Beside the file, on the same disk.
    let work = tempfile::Builder::new()
        .prefix("bench-lifecycle-")
        .tempdir_in(data_dir.parent().unwrap_or(Path::new(".")))?;
    let mut cfg = config.clone();
    cfg.server.data_dir = data_dir.to_path_buf();

    // 1. Export, server stopped (the CLI's path).
    let store = app::open_store(&cfg).await?;
    let out = work.path().join("events.parquet");
    let t = Instant::now();
    let rows = lifecycle::export_to(
        &store,
        Stream::Events,
        Format::Parquet,
        Span::default(),
        &out,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    store.close().await?;
    drop(store);
    println!(
        "export events -> Parquet   {rows} rows in {secs:.2} s = {:.0} rows/s; {:.0} MB Parquet vs {:.0} MB DuckDB file",
        rows as f64 / secs,
        size(&out) as f64 / MB,
        size(&db) as f64 / MB
    );
    std::fs::remove_file(&out)?;

    // 2. Online backup over HTTP.
    let server = Server::start(data_dir).await?;
    let client = http_client(concurrency.max(1));
    let t = Instant::now();
    let reply = request(
        &client,
        "POST",
        &format!("{}/api/admin/backup", server.url),
        String::new(),
        &[],
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    if reply.status != 200 {
        return Err(BenchError::Failed(format!(
            "backup answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    let info: serde_json::Value =
        serde_json::from_slice(&reply.body).map_err(|e| BenchError::Http(e.to_string()))?;
    server.stop().await?;
    let backup = std::path::PathBuf::from(info["path"].as_str().unwrap_or_default());
    println!(
        "online backup (HTTP)       {} rows in {secs:.2} s; {:.0} MB of Parquet",
        info["rows"],
        info["bytes"].as_f64().unwrap_or(0.0) / MB
    );

    // 3. Restore into a new data dir.
    let copy = work.path().join("copy");
    let t = Instant::now();
    let restored = lifecycle::backup::restore(&backup, &copy, &app::store_options(config), false)
        .await
        .map_err(|e| BenchError::Failed(e.to_string()))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "restore (CLI)              {} rows in {secs:.2} s, counts checked; {:.0} MB file",
        restored.tables.values().sum::<u64>(),
        size(&restored.db_path) as f64 / MB
    );
    let _ = std::fs::remove_dir_all(&backup);

    // 4. Beacons alone, then beacons while the start-up prune deletes 20 of 30 days.
    let bodies = || super::ingest::bodies(beacons as usize, 1, true);
    let server = Server::start(&copy).await?;
    let alone = load_url(
        format!("{}/api/analytics/events", server.url),
        "beacons alone",
        bodies(),
        1,
        concurrency,
        None,
    )
    .await?;
    server.stop().await?;
    print_phase(&alone);
    let before = size(&copy.join("growth.duckdb"));
    let started = Instant::now();
    let server = Server::start_with(
        &copy,
        &[("GROWTH_RETENTION_EVENTS_DAYS", Some("10".to_string()))],
    )
    .await?;
    let cutoff = chrono::Utc::now() - chrono::TimeDelta::days(10) - chrono::TimeDelta::hours(1);
    let done = Arc::new(AtomicBool::new(false));
    let url = format!("{}/api/analytics/events", server.url);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (client, url, done) = (client.clone(), url.clone(), done.clone());
        let mut queue = super::ingest::bodies(beacons as usize / concurrency + 1, 1, true);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = w;
            while !done.load(Ordering::Relaxed) {
                let body = queue
                    .pop()
                    .unwrap_or_else(|| format!("{{\"event\":\"b{i}\"}}"));
                i += concurrency;
                let t = Instant::now();
                let (status, _) = send_as(&client, "POST", &url, body, None).await?;
                if status != 200 {
                    return Err(BenchError::Failed(format!("ingest answered {status}")));
                }
                latencies.push(t.elapsed());
            }
            Ok::<_, BenchError>(latencies)
        }));
    }
    let storage_url = format!("{}/api/admin/storage", server.url);
    let pruned_at = loop {
        let s = get_json(&client, &storage_url).await?;
        let oldest = s["streams"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["stream"] == "events"))
            .and_then(|e| e["oldest"].as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if oldest.is_some_and(|o| o > cutoff) {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err(BenchError::Failed("prune did not finish in 30 min".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    done.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.map_err(|e| BenchError::Failed(e.to_string()))??);
    }
    let sent = latencies.len();
    let (p50, p99) = percentiles(&mut latencies);
    server.stop().await?;
    println!(
        "prune 20 of 30 days        done {:.1} s after spawn (start-up prune); {sent} beacons meanwhile: p50 {p50:.2} ms, p99 {p99:.2} ms (alone: p99 {:.2} ms); file {:.0} MB -> {:.0} MB",
        pruned_at.as_secs_f64(),
        alone.p99_ms,
        before as f64 / MB,
        size(&copy.join("growth.duckdb")) as f64 / MB
    );
    Ok(())
}
