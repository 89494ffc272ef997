//! `growth-stack bench`: ingest measured in one run on one machine: (a) the store's own
//! append path in large commits, (b) batched HTTP ingest, (c) single-event beacons, against
//! a real server process started from this same binary.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::app::store_options;
use crate::cli::BenchArgs;
use crate::config::Config;
use crate::store::{Batch, EventRow, Store, StoreError};

const CEILING_COMMIT_ROWS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bench: {0}")]
    Io(#[from] std::io::Error),
    #[error("bench: HTTP: {0}")]
    Http(String),
    #[error("bench: {0}")]
    Failed(String),
}

pub(crate) type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive client; no Nagle delay, so small requests are timed as sent.
pub(crate) fn http_client(connections: usize) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build(http)
}

/// Reads a child server's stdout up to its "listening on" banner, returns the URL, and
/// keeps draining the rest so the child never blocks on a full pipe.
pub(crate) async fn listen_url(child: &mut tokio::process::Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout from server")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next_line().await.map_err(|e| e.to_string())? {
            Some(line) => {
                if let Some(url) = line.strip_prefix("growth-stack listening on ") {
                    break url.trim().to_string();
                }
            }
            None => return Err("server exited before listening".into()),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(url)
}

/// Sends one request and reads the whole answer.
pub(crate) async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: String,
) -> Result<(u16, Bytes), BenchError> {
    send_as(client, method, url, body, None).await
}

/// `send` with a `User-Agent`, as a browser's beacon has.
pub(crate) async fn send_as(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: String,
    user_agent: Option<&'static str>,
) -> Result<(u16, Bytes), BenchError> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        // text/plain, as navigator.sendBeacon sends it.
        .header("content-type", "text/plain;charset=UTF-8");
    if let Some(ua) = user_agent {
        req = req.header("user-agent", ua);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}

/// Throughput and latency of one load phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub events: u64,
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Phase {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

pub async fn run(_config: &Config, args: &BenchArgs) -> Result<(), BenchError> {
    if let Some(data_dir) = &args.startup {
        return startup(data_dir).await;
    }
    if args.vitals {
        return crate::bench_vitals::run(args).await;
    }
    if let Some(data_dir) = &args.alerts {
        return crate::bench_alerts::run(_config, data_dir, args.user_rules, 10).await;
    }
    if let Some(data_dir) = &args.growth {
        return crate::bench_growth::run(_config, data_dir, args.reps).await;
    }
    let dir = tempfile::tempdir()?;
    println!(
        "growth-stack bench: {} events, batches of {}, {} beacons, {} connections, {} cores",
        args.events,
        args.batch,
        args.beacons,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let ceiling = appender_ceiling(&dir.path().join("ceiling"), args.events).await?;
    print_phase(&ceiling);

    let server = Server::start(&dir.path().join("server")).await?;
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
        &client,
        &server.url,
        "batched HTTP",
        batched_bodies,
        args.batch as u64,
        args.concurrency,
    )
    .await?;
    print_phase(&batched);

    let beacon_bodies = bodies(args.beacons as usize, 1, args.anonymous);
    let beacons = load(
        &client,
        &server.url,
        "single beacons",
        beacon_bodies,
        1,
        args.concurrency,
    )
    .await?;
    print_phase(&beacons);

    let stored = server.count_events(&client).await?;
    let sent = batched.events + beacons.events;
    if stored != sent {
        return Err(BenchError::Failed(format!(
            "{sent} events acknowledged but {stored} stored"
        )));
    }
    let rss_after = server.rss_mb().unwrap_or(0.0);
    server.stop().await?;

    println!("verified: all {stored} acknowledged events are in the database");
    println!("RSS after load: {rss_after:.1} MB");
    println!(
        "ratio batched HTTP / appender ceiling: {:.2}",
        batched.events_per_sec() / ceiling.events_per_sec()
    );
    Ok(())
}

/// Start-up to ready on an existing data dir, five times; the server is stopped cleanly each time.
async fn startup(data_dir: &Path) -> Result<(), BenchError> {
    let mut ready = Vec::new();
    let mut rss = 0.0;
    for _ in 0..5 {
        let server = Server::start(data_dir).await?;
        ready.push(Duration::from_secs_f64(server.ready_ms / 1000.0));
        rss = server.rss_mb().unwrap_or(0.0);
        let rows = server.count_events(&http_client(1)).await.unwrap_or(0);
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

pub(crate) fn print_phase(p: &Phase) {
    println!(
        "{:<16} {:>10.0} events/s {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} events in {:.2} s)",
        p.name,
        p.events_per_sec(),
        p.requests_per_sec(),
        p.p50_ms,
        p.p99_ms,
        p.events,
        p.seconds
    );
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
    let mut opts = store_options(&Config::default());
    opts.queue_rows = opts.queue_rows.max(CEILING_COMMIT_ROWS);
    let store = {
        let path = path.join("growth.duckdb");
        tokio::task::spawn_blocking(move || Store::open(&path, &opts))
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))??
    };
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

pub(crate) fn bodies(requests: usize, per_request: usize, anonymous: bool) -> Vec<String> {
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
    client: &HttpClient,
    base: &str,
    name: &'static str,
    bodies: Vec<String>,
    events_per_body: u64,
    concurrency: usize,
) -> Result<Phase, BenchError> {
    let url = format!("{base}/api/analytics/events");
    load_url(
        client,
        url,
        name,
        bodies,
        events_per_body,
        concurrency,
        None,
    )
    .await
}

/// `load` against any ingest URL.
pub(crate) async fn load_url(
    client: &HttpClient,
    url: String,
    name: &'static str,
    bodies: Vec<String>,
    events_per_body: u64,
    concurrency: usize,
    user_agent: Option<&'static str>,
) -> Result<Phase, BenchError> {
    let requests = bodies.len() as u64;
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let body = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(body) = body else { break };
                let t = Instant::now();
                let (status, _) = send_as(&client, "POST", &url, body, user_agent).await?;
                if status != 200 {
                    return Err(BenchError::Failed(format!("ingest answered {status}")));
                }
                latencies.push(t.elapsed());
            }
            Ok::<_, BenchError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.map_err(|e| BenchError::Failed(e.to_string()))??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = percentiles(&mut latencies);
    Ok(Phase {
        name,
        events: requests * events_per_body,
        requests,
        seconds,
        p50_ms,
        p99_ms,
    })
}

pub(crate) fn percentiles(latencies: &mut [Duration]) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// A server process from this binary, on a free loopback port with its own data dir.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) ready_ms: f64,
}

impl Server {
    pub(crate) async fn start(data_dir: &Path) -> Result<Server, BenchError> {
        let exe = std::env::current_exe()?;
        let spawned = Instant::now();
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--no-auth",
                "--rate-limit",
                "0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("GROWTH_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let url = listen_url(&mut child).await.map_err(BenchError::Failed)?;
        let client = http_client(1);
        loop {
            if let Ok((200, _)) =
                send(&client, "GET", &format!("{url}/readyz"), String::new()).await
            {
                break;
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                return Err(BenchError::Failed("server not ready after 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready_ms = spawned.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Server {
            child,
            url,
            ready_ms,
        })
    }

    pub(crate) fn rss_mb(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    async fn count_events(&self, client: &HttpClient) -> Result<u64, BenchError> {
        let url = format!("{}/api/analytics/events?range=1d&limit=1", self.url);
        let (_, body) = send(client, "GET", &url, String::new()).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| BenchError::Http(e.to_string()))?;
        v["totals"]["events"]
            .as_u64()
            .ok_or_else(|| BenchError::Failed(format!("unexpected events answer: {v}")))
    }

    pub(crate) async fn stop(mut self) -> Result<(), BenchError> {
        if let Some(pid) = self.child.id() {
            // SIGTERM: the server drains, checkpoints and exits 0.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let status = self.child.wait().await?;
        if !status.success() {
            return Err(BenchError::Failed(format!("server exited with {status}")));
        }
        Ok(())
    }
}
