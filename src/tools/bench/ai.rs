//! `growth-stack bench-ai`: the AI gateway's overhead, measured in one run against a
//! fixed-reply mock provider on loopback: the same requests sent directly to the mock,
//! through the gateway as cache misses, and as cache hits (interleaved, one at a time),
//! then cache-hit throughput with many connections, then a check that every call the
//! gateway answered is a row in DuckDB.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;

use super::client::{get_json, http_client, percentiles, request, BenchError, HttpClient, Server};
use crate::cli::BenchAiArgs;

const KEY: &str = "bench-gateway-key-0123456789";

/// A small, typical completion: what the mock answers to every call.
const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Sheet-pan chicken with lemon and potatoes: 10 minutes of prep, 35 in the oven.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":21,"total_tokens":45}}"#;

fn body(prompt: &str) -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 200,
        "messages": [
            {"role": "system", "content": "You plan meals for a busy family of four."},
            {"role": "user", "content": prompt},
        ],
    })
    .to_string()
}

/// One POST, whole answer read; returns the status and the `x-growth-cache` header.
async fn post_json(
    client: &HttpClient,
    url: &str,
    body: String,
) -> Result<(u16, Option<String>), BenchError> {
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", &auth),
    ];
    let reply = request(client, "POST", url, body, &headers).await?;
    let cache = reply
        .headers
        .get("x-growth-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((reply.status, cache))
}

struct Stats {
    name: &'static str,
    n: usize,
    p50: f64,
    p99: f64,
    per_sec: Option<f64>,
}

fn stats(name: &'static str, mut d: Vec<Duration>, seconds: Option<f64>) -> Stats {
    let (p50, p99) = percentiles(&mut d);
    Stats {
        name,
        n: d.len(),
        p50,
        p99,
        per_sec: seconds.map(|s| d.len() as f64 / s),
    }
}

fn print(s: &Stats) {
    let rate = s
        .per_sec
        .map_or(String::new(), |r| format!("{r:>10.0} req/s"));
    println!(
        "{:<28} {:>7}  p50 {:>7.3} ms  p99 {:>7.3} ms {rate}",
        s.name, s.n, s.p50, s.p99
    );
}

/// The fixed-reply provider, in this process, on a free loopback port.
async fn start_mock() -> Result<(String, Arc<AtomicU64>), BenchError> {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |_body: Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                ([("content-type", "application/json")], REPLY)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), calls))
}

/// The gateway: this binary serving on a free port with its own data dir, the mock as
/// its only provider.
async fn start_gateway(
    data_dir: &std::path::Path,
    mock: &str,
    cache_entries: usize,
) -> Result<Server, BenchError> {
    Server::start_with(
        data_dir,
        &[
            ("OPENAI_BASE_URL", Some(format!("{mock}/v1"))),
            ("OPENAI_API_KEY", Some("sk-bench-not-a-real-key".into())),
            ("GROWTH_GATEWAY_KEYS", Some(KEY.into())),
            ("GROWTH_AI_RATE_LIMIT_PER_MINUTE", Some("0".into())),
            ("GROWTH_AI_MAX_CACHE_SIZE", Some(cache_entries.to_string())),
            ("ANTHROPIC_API_KEY", None),
            ("ANTHROPIC_BASE_URL", None),
        ],
    )
    .await
}

/// Calls recorded in `ai_performance_metrics` over the last hour.
async fn recorded(client: &HttpClient, url: &str) -> Result<u64, BenchError> {
    let v = get_json(
        client,
        &format!("{url}/api/analytics/ai-performance?range=1h&limit=1"),
    )
    .await?;
    v["totals"]["calls"]
        .as_u64()
        .ok_or_else(|| BenchError::Failed(format!("unexpected answer: {v}")))
}

/// `bench-ai`: see the module comment.
pub async fn run(args: &BenchAiArgs) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let (mock, mock_calls) = start_mock().await?;
    let server = start_gateway(&dir.path().join("data"), &mock, args.requests + 16).await?;
    let gw = server.url.clone();
    let client = http_client(args.concurrency.max(1));
    println!(
        "growth-stack bench-ai: {} interleaved requests per path, then {} cache hits over {} connections, {} cores",
        args.requests,
        args.hits,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let direct_url = format!("{mock}/v1/chat/completions");
    let gw_url = format!("{gw}/v1/chat/completions");
    let hot = body("Plan five dinners for this week.");
    let mut sent_to_gateway = 0u64;
    let mut sent_direct = 0u64;

    // Warm-up: connections, caches, the first answer to hit later.
    for i in 0..200 {
        post_json(&client, &direct_url, body(&format!("warm {i}"))).await?;
        post_json(&client, &gw_url, body(&format!("warm {i}"))).await?;
        post_json(&client, &gw_url, hot.clone()).await?;
        sent_to_gateway += 2;
        sent_direct += 1;
    }

    let (mut direct, mut miss, mut hit) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.requests {
        let prompt = format!("Plan dinner number {i} for a family of four.");
        let t = Instant::now();
        post_json(&client, &direct_url, body(&prompt)).await?;
        direct.push(t.elapsed());
        sent_direct += 1;
        let t = Instant::now();
        let (status, cache) = post_json(&client, &gw_url, body(&prompt)).await?;
        miss.push(t.elapsed());
        if status != 200 || cache.as_deref() != Some("MISS") {
            return Err(BenchError::Failed(format!(
                "miss answered {status} {cache:?}"
            )));
        }
        let t = Instant::now();
        let (status, cache) = post_json(&client, &gw_url, hot.clone()).await?;
        hit.push(t.elapsed());
        if status != 200 || cache.as_deref() != Some("HIT") {
            return Err(BenchError::Failed(format!(
                "hit answered {status} {cache:?}"
            )));
        }
        sent_to_gateway += 2;
    }
    let direct = stats("direct to mock", direct, None);
    let miss = stats("gateway, cache miss", miss, None);
    let hit = stats("gateway, cache hit", hit, None);
    for s in [&direct, &miss, &hit] {
        print(s);
    }
    println!(
        "miss overhead over direct: p50 {:+.3} ms, p99 {:+.3} ms",
        miss.p50 - direct.p50,
        miss.p99 - direct.p99
    );

    // Throughput of cache hits with many connections.
    let left = Arc::new(AtomicU64::new(args.hits as u64));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, url, body, left) = (client.clone(), gw_url.clone(), hot.clone(), left.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let t = Instant::now();
                let (status, cache) = post_json(&client, &url, body.clone()).await?;
                if status != 200 || cache.as_deref() != Some("HIT") {
                    return Err(BenchError::Failed(format!(
                        "hit answered {status} {cache:?}"
                    )));
                }
                lat.push(t.elapsed());
            }
            Ok::<_, BenchError>(lat)
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.map_err(|e| BenchError::Failed(e.to_string()))??);
    }
    let seconds = start.elapsed().as_secs_f64();
    sent_to_gateway += lat.len() as u64;
    let thr = stats("cache hits, concurrent", lat, Some(seconds));
    print(&thr);

    // Every answered call must be a committed row; rows trail the answers by one commit.
    let wait = Instant::now();
    let rows = loop {
        let n = recorded(&client, &gw).await?;
        if n >= sent_to_gateway || wait.elapsed() > Duration::from_secs(60) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let flushed_after = wait.elapsed();
    // SIGTERM: the gateway drains its metric rows, commits, checkpoints, exits 0.
    let stopped = server.stop().await;
    println!(
        "gateway calls answered: {sent_to_gateway}, of which {} went upstream (the misses); rows in DuckDB: {rows} (all there {:.0} ms after the last answer)",
        mock_calls.load(Ordering::Relaxed) - sent_direct,
        flushed_after.as_secs_f64() * 1000.0
    );
    if rows != sent_to_gateway {
        return Err(BenchError::Failed(format!(
            "{sent_to_gateway} calls answered but {rows} rows recorded"
        )));
    }
    stopped?;
    println!("verified: every call is a row, none dropped; gateway stopped cleanly");
    Ok(())
}
