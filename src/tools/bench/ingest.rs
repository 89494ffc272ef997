//! `growth-stack bench`: ingest measured in one run on one machine: (a) the store's own
//! append path in large commits, (b) batched HTTP ingest, (c) single-event beacons, against
//! a real server process started from this same binary; and `--startup`, start-up to ready.

use std::path::Path;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::client::{
    get_json, http_client, load_url, percentiles, print_phase, BenchError, HttpClient, Phase,
    Server,
};
use crate::app;
use crate::cli::BenchArgs;
use crate::config::Config;
use crate::store::{Batch, EventRow, Row};

const CEILING_COMMIT_ROWS: usize = 10_000;

pub async fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    println!(
        "growth-stack bench: {} events, batches of {}, {} beacons, {} connections, beacons at {:?} connections, {} cores",
        args.events,
        args.batch,
        args.beacons,
        args.concurrency,
        args.beacon_connections,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let ceiling = appender_ceiling(&dir.path().join("ceiling"), args.events).await?;
    print_phase(&ceiling);
    let [optimised, plain] = flush_cost(&dir.path().join("ceiling/growth.duckdb"), 32, 1000)?;
    println!(
        "one appender commit of 32 events: {:.0} µs ({:.0} µs CPU) with DuckDB's optimiser, {:.0} µs ({:.0} µs CPU) without (the writer's setting)",
        optimised.0, optimised.1, plain.0, plain.1
    );

    let server_dir = dir.path().join("server");
    let server = match &args.server_exe {
        Some(exe) => {
            println!("server: {}", exe.display());
            Server::start_from(exe, &server_dir, &[]).await?
        }
        None => Server::start(&server_dir).await?,
    };
    println!(
        "server: ready {:.0} ms after spawn, idle RSS {:.1} MB",
        server.ready_ms,
        server.rss_mb().unwrap_or(0.0)
    );
    let client = http_client(args.concurrency);

    let batched_bodies = bodies(
        args.events.div_ceil(args.batch as u64) as usize,
        args.batch,
        args.anonymous,
    );
    let batched = load(
        &server.url,
        "batched HTTP",
        batched_bodies,
        args.batch as u64,
        args.concurrency,
    )
    .await?;
    print_phase(&batched);

    let mut sent = batched.events;
    for &connections in &args.beacon_connections {
        let beacon_bodies = bodies(args.beacons as usize, 1, args.anonymous);
        let cpu = server.cpu_seconds();
        let own_cpu = process_cpu_seconds();
        let beacons = load(&server.url, "single beacons", beacon_bodies, 1, connections).await?;
        print!("{connections:>3} connections, ");
        print_phase(&beacons);
        if let (Some(before), Some(after)) = (cpu, server.cpu_seconds()) {
            println!(
                "{connections:>3} connections, server CPU per beacon: {:.1} µs",
                (after - before) * 1e6 / beacons.requests as f64
            );
        }
        // The load generator shares the machine's cores: what it spends is not the server's.
        println!(
            "{connections:>3} connections, load generator CPU per beacon: {:.1} µs",
            (process_cpu_seconds() - own_cpu) * 1e6 / beacons.requests as f64
        );
        sent += beacons.events;
    }

    let stored = count_events(&server, &client).await?;
    if stored != sent {
        return Err(BenchError::Failed(format!(
            "{sent} events acknowledged but {stored} stored"
        )));
    }
    let rss_after = server.rss_mb().unwrap_or(0.0);
    server.stop().await?;
    // And in the file itself, once the server has stopped.
    let in_file = count_in_file(&server_dir.join("growth.duckdb"))?;
    if in_file != sent {
        return Err(BenchError::Failed(format!(
            "{sent} events acknowledged but {in_file} in the file"
        )));
    }

    println!("verified: all {stored} acknowledged events are in the database file");
    println!("RSS after load: {rss_after:.1} MB");
    println!(
        "ratio batched HTTP / appender ceiling: {:.2}",
        batched.events_per_sec() / ceiling.events_per_sec()
    );
    Ok(())
}

/// Start-up to ready on an existing data dir, five times; the server is stopped cleanly each time.
pub async fn startup(data_dir: &Path) -> Result<(), BenchError> {
    let mut ready = Vec::new();
    let mut rss = 0.0;
    for _ in 0..5 {
        let server = Server::start(data_dir).await?;
        ready.push(Duration::from_secs_f64(server.ready_ms / 1000.0));
        rss = server.rss_mb().unwrap_or(0.0);
        let rows = count_events(&server, &http_client(1)).await.unwrap_or(0);
        server.stop().await?;
        println!(
            "ready in {:.0} ms ({rows} events in the last day)",
            ready.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
    }
    let (p50, _) = percentiles(&mut ready);
    println!(
        "start-up to ready on {}: median {p50:.0} ms; idle RSS {rss:.1} MB",
        data_dir.display()
    );
    Ok(())
}

fn event(i: u64) -> EventRow {
    let now = chrono::Utc::now().timestamp_micros();
    EventRow {
        id: Uuid::new_v4(),
        user_id: Some(format!("user-{}", i % 5000 + 1)),
        visitor_id: Some(format!("user-{}", i % 5000 + 1)),
        session_id: Some(format!("s_{}", i / 8)),
        event: "recipe_viewed".into(),
        properties: Some(format!(
            r#"{{"recipeId":"r_{}","category":"dinner"}}"#,
            i % 997
        )),
        route: Some("/recipes/[id]".into()),
        referrer: None,
        user_agent: Some("growth-stack-bench".into()),
        ip: Some("127.0.0.0".into()),
        timestamp: now / 1000,
        created_at: now,
        ..Default::default()
    }
}

/// The same rows the HTTP phases send, as JSON.
fn event_json(i: u64) -> serde_json::Value {
    serde_json::json!({
        "user_id": format!("user-{}", i % 5000 + 1),
        "session_id": format!("s_{}", i / 8),
        "event": "recipe_viewed",
        "properties": { "recipeId": format!("r_{}", i % 997), "category": "dinner" },
        "route": "/recipes/[id]",
    })
}

async fn appender_ceiling(path: &Path, events: u64) -> Result<Phase, BenchError> {
    let mut config = Config::default();
    config.server.data_dir = path.to_path_buf();
    config.storage.queue_rows = config.storage.queue_rows.max(CEILING_COMMIT_ROWS);
    let store = app::open_store(&config).await?;
    let rows: Vec<EventRow> = (0..events).map(event).collect();
    let mut latencies = Vec::new();
    let start = Instant::now();
    for chunk in rows.chunks(CEILING_COMMIT_ROWS) {
        let t = Instant::now();
        store.append(Batch::Events(chunk.to_vec())).await?;
        latencies.push(t.elapsed());
    }
    let seconds = start.elapsed().as_secs_f64();
    store.close().await?;
    let (p50_ms, p99_ms) = percentiles(&mut latencies);
    Ok(Phase {
        name: "appender ceiling",
        events,
        requests: latencies.len() as u64,
        seconds,
        p50_ms,
        p99_ms,
    })
}

/// Wall time of one commit of the writer's appender (`rows` events, then `flush`), with
/// DuckDB's optimiser on and off, in alternating blocks of 50 so that a noisy machine
/// weighs on both alike: in this DuckDB a flush is an `INSERT ... SELECT` planned anew.
/// Each as (wall, CPU of this process: every thread, DuckDB's workers too) in µs.
fn flush_cost(path: &Path, rows: u64, flushes: usize) -> Result<[(f64, f64); 2], BenchError> {
    const BLOCK: usize = 50;
    let failed = |e: duckdb::Error| BenchError::Failed(format!("{}: {e}", path.display()));
    let conn = duckdb::Connection::open(path).map_err(failed)?;
    let mut app = conn.appender("user_events").map_err(failed)?;
    let batch: Vec<EventRow> = (0..rows).map(event).collect();
    let blocks = flushes.div_ceil(BLOCK).max(1);
    let mut spent = [Duration::ZERO; 2];
    let mut cpu = [0.0; 2];
    let mut seq = 0;
    for block in 0..blocks * 2 {
        let plain = block % 2 == 1;
        conn.execute_batch(if plain {
            "PRAGMA disable_optimizer"
        } else {
            "PRAGMA enable_optimizer"
        })
        .map_err(failed)?;
        let t = Instant::now();
        let c = process_cpu_seconds();
        for _ in 0..BLOCK {
            for row in &batch {
                seq += 1;
                row.append_numbered(&mut app, seq).map_err(failed)?;
            }
            app.flush().map_err(failed)?;
        }
        spent[usize::from(plain)] += t.elapsed();
        cpu[usize::from(plain)] += process_cpu_seconds() - c;
    }
    let per = |s: f64| s * 1e6 / (blocks * BLOCK) as f64;
    Ok([0, 1].map(|i| (per(spent[i].as_secs_f64()), per(cpu[i]))))
}

/// CPU time of this process so far, every thread, in seconds.
fn process_cpu_seconds() -> f64 {
    crate::scaling::cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

pub fn bodies(requests: usize, per_request: usize, anonymous: bool) -> Vec<String> {
    let mut i = 0u64;
    (0..requests)
        .map(|_| {
            let items: Vec<serde_json::Value> = (0..per_request)
                .map(|_| {
                    i += 1;
                    let mut e = event_json(i);
                    if anonymous {
                        // No user id: the server derives a visitor id and updates no profile.
                        e.as_object_mut().map(|o| o.remove("user_id"));
                    }
                    e
                })
                .collect();
            if per_request == 1 {
                items[0].to_string()
            } else {
                serde_json::Value::Array(items).to_string()
            }
        })
        .collect()
}

/// Sends every body with `concurrency` workers; each must be acknowledged with 2xx.
async fn load(
    base: &str,
    name: &'static str,
    bodies: Vec<String>,
    events_per_body: u64,
    concurrency: usize,
) -> Result<Phase, BenchError> {
    let url = format!("{base}/api/analytics/events");
    load_url(url, name, bodies, events_per_body, concurrency, None).await
}

/// Events in a stopped server's database file.
fn count_in_file(path: &Path) -> Result<u64, BenchError> {
    let failed = |e: duckdb::Error| BenchError::Failed(format!("{}: {e}", path.display()));
    let conn = duckdb::Connection::open(path).map_err(failed)?;
    conn.query_row("SELECT count(*) FROM user_events", [], |r| r.get(0))
        .map_err(failed)
}

/// Events the server stored over the last day.
async fn count_events(server: &Server, client: &HttpClient) -> Result<u64, BenchError> {
    let url = format!("{}/api/analytics/events?range=1d&limit=1", server.url);
    let v = get_json(client, &url).await?;
    v["totals"]["events"]
        .as_u64()
        .ok_or_else(|| BenchError::Failed(format!("unexpected events answer: {v}")))
}
