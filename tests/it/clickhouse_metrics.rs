//! AI-call metrics and query timings on the ClickHouse engine: the same fixture through a
//! DuckDB node and through two ClickHouse nodes on a 2-shard cluster (half through each)
//! gives the same JSON on every ported read; the gateway's own recorded calls land in
//! ClickHouse, where the other node reads them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clickhouse::{day_start, iso, node, node_with};
use crate::clickhouse_servers::ChCluster;
use crate::helpers::{client, Server};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Calls over six days: three models, some without tokens, failures with an error,
/// cache hits, users and calls without one. Durations are multiples of 1/4 ms, so every
/// sum is exact whatever order an engine adds in.
fn ai_fixture() -> Vec<Value> {
    let base = day_start(6);
    let models = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b"];
    (0..72i64)
        .map(|i| {
            let at = base + (i % 6) * DAY_MS + i * MINUTE_MS + 1234;
            let mut call = json!({
                "id": format!("00000000-0000-4000-a000-{i:012}"),
                "requestId": format!("call-{i}"),
                "endpoint": if i % 2 == 0 { "/v1/chat/completions" } else { "/v1/messages" },
                "model": models[(i % 3) as usize],
                "duration": 10.0 + ((i * 37) % 200) as f64 * 0.25,
                "cacheHit": i % 4 == 0,
                "timestamp": at,
                "createdAt": iso(at),
            });
            let c = call.as_object_mut().unwrap();
            if i % 7 != 0 {
                c.insert("tokens".into(), json!(100 + i * 3));
            }
            if i % 9 == 4 {
                c.insert("success".into(), json!(false));
                c.insert("error".into(), json!("rate limited"));
            }
            if i % 5 != 0 {
                c.insert("userId".into(), json!(format!("user-{}", i % 4)));
            }
            call
        })
        .collect()
}

/// Query timings over five days: a slow lookup (some above the 1000 ms threshold), a
/// cached update, a count with rows, and two N+1 loops: one request repeating a lookup six
/// times (75 ms in all), one user repeating another five times within a second without a
/// request id; and a request that repeats a lookup but stays under 50 ms (no finding).
fn db_fixture() -> Vec<Value> {
    let base = day_start(5) + 3_600_000;
    let mut out = Vec::new();
    let mut push = |q: String, duration: f64, at: i64, extra: Value| {
        let n = out.len();
        let mut t = json!({
            "id": format!("00000000-0000-4000-b000-{n:012}"),
            "query": q, "duration": duration, "timestamp": at, "createdAt": iso(at),
        });
        if let (Some(t), Some(x)) = (t.as_object_mut(), extra.as_object()) {
            t.extend(x.clone());
        }
        out.push(t);
    };
    for i in 0..30i64 {
        let at = base + (i % 5) * DAY_MS + i * 7 * MINUTE_MS;
        push(
            format!("SELECT * FROM users WHERE email = 'u{i}@example.com'"),
            400.0 + ((i * 53) % 40) as f64 * 37.5,
            at,
            json!({ "rows": 1, "source": if i % 3 == 0 { "src/auth.ts:10" } else { "src/users.ts:7" },
                    "userId": format!("user-{}", i % 3) }),
        );
        push(
            format!("UPDATE carts SET qty = {} WHERE id = {i}", i % 4),
            2.0 + (i % 8) as f64 * 0.5,
            at + 1000,
            json!({ "cached": i % 3 == 0, "route": "/cart" }),
        );
        if i % 2 == 0 {
            push(
                "SELECT count(*) FROM orders".into(),
                40.0 + i as f64,
                at + 2000,
                json!({ "rows": 10 + i, "source": "src/orders.ts:3" }),
            );
        }
    }
    let loop_at = base + 2 * DAY_MS + 5 * 3_600_000;
    for k in 0..6i64 {
        push(
            format!("SELECT * FROM recipes WHERE id = {k}"),
            12.5,
            loop_at + k * 10,
            json!({ "requestId": "req-loop", "route": "/recipes/:id", "source": "src/recipes.ts:42" }),
        );
    }
    for k in 0..5i64 {
        push(
            format!("SELECT * FROM recipes WHERE id = {}", 10 + k),
            8.0,
            loop_at + DAY_MS + k * 10,
            json!({ "requestId": "req-fine", "route": "/recipes/:id", "source": "src/recipes.ts:42" }),
        );
        push(
            format!("SELECT * FROM comments WHERE post_id = {k}"),
            15.25,
            loop_at + 3_600_000 + k * 100,
            json!({ "userId": "user-7", "route": "/posts/:id", "source": "src/posts.ts:9" }),
        );
    }
    out
}

/// Equal JSON, but floats within 1e-9 relative: sums, means and standard deviations may
/// differ in the last bits by the order each engine adds in. Integers, strings, nulls
/// and the kind of each number (integer or float) must match exactly.
fn assert_same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            assert!(x.is_f64() && y.is_f64(), "{at}: {x} vs {y} (kind)");
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{at}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_same(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            assert_eq!(kx, ky, "{at}: keys");
            for (k, v) in x {
                assert_same(v, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn post_all(s: &Server, path: &str, items: &[Value]) {
    for chunk in items.chunks(25) {
        let r = s.post_json(path, &Value::Array(chunk.to_vec()));
        assert_eq!(r.status(), 200, "POST {path} to {}", s.url);
    }
}

#[test]
fn metrics_on_duckdb_and_through_either_clickhouse_node_agree() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let (b, _db) = node(&ch, &[1, 0]);
    let d = Server::start();
    let (calls, timings) = (ai_fixture(), db_fixture());
    post_all(&d, "/api/analytics/ai-performance", &calls);
    post_all(&d, "/api/analytics/database-performance", &timings);
    // Half through each ClickHouse node.
    for (k, s) in [&a, &b].into_iter().enumerate() {
        let half = |all: &[Value]| -> Vec<Value> {
            all.iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == k)
                .map(|(_, v)| v.clone())
                .collect()
        };
        post_all(s, "/api/analytics/ai-performance", &half(&calls));
        post_all(s, "/api/analytics/database-performance", &half(&timings));
    }
    // Spread over both shards, all of them stored once.
    for (table, n) in [
        ("ai_performance_metrics", calls.len()),
        ("database_performance_metrics", timings.len()),
    ] {
        let on = |i| ch.count(i, &format!("SELECT count() FROM growth.{table}_local"));
        let (s0, s1) = (on(0), on(1));
        assert!(s0 > 0 && s1 > 0, "{table} on both shards: {s0} + {s1}");
        assert_eq!((s0 + s1) as usize, n, "{table}");
    }

    let week = format!("from={}&to={}", iso(day_start(7)), iso(day_start(-1)));
    let day = format!("from={}&to={}", iso(day_start(3)), iso(day_start(2)));
    let empty = format!("from={}&to={}", iso(day_start(40)), iso(day_start(30)));
    let ai = "/api/analytics/ai-performance";
    let db = "/api/analytics/database-performance";
    let gets = [
        format!("{ai}?{week}&limit=500"),
        format!("{ai}?{week}&limit=7&offset=5"),
        format!("{ai}?{day}"),
        format!("{ai}?{empty}"),
        format!("{db}?{week}&limit=500"),
        format!("{db}?{week}&limit=4&offset=9"),
        format!("{db}?{day}"),
        format!("{db}?{empty}"),
        format!("{db}/queries?{week}"),
        format!("{db}/queries?{week}&sort=mean"),
        format!("{db}/queries?{week}&sort=p95&limit=2&offset=1"),
        format!("{db}/queries?{week}&sort=calls"),
        format!("{db}/queries?{week}&sort=max"),
        format!("{db}/queries?{week}&sort=slow"),
        format!("{db}/queries?{day}"),
        format!("{db}/queries?{empty}"),
        format!("{db}/n-plus-one?{week}"),
        format!("{db}/n-plus-one?{week}&limit=1&offset=1"),
        format!("{db}/n-plus-one?{empty}"),
    ];
    // The fixture is all there, and the reads have something to agree on.
    let r = a.get_json(&gets[0]);
    assert_eq!(r["totals"]["calls"], calls.len());
    assert_eq!(r["totals"]["errors"], 8);
    assert_eq!(r["totals"]["cache_hits"], 18);
    assert_eq!(r["models"].as_array().unwrap().len(), 3);
    assert_eq!(r["users"].as_array().unwrap().len(), 4);
    let q = b.get_json(&gets[8]);
    assert_eq!(q["totals"]["queries"], timings.len());
    // The lookup by email: a mean of 1168.75 ms, 19 of its 30 calls above 1000 ms.
    assert_eq!(q["totals"]["slow_by_threshold"], 1, "{q}");
    assert_eq!(q["queries"][0]["slow"], 19, "{q}");
    let n1 = b.get_json(&gets[16]);
    assert_eq!(n1["page"]["total"], 2, "{n1}");
    let kinds: Vec<&str> = n1["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // Most time first: the user's 76.25 ms, then the request's 75 ms.
    assert_eq!(kinds, ["session", "request"], "{n1}");
    assert_eq!(n1["findings"][1]["request"], "req-loop");
    assert_eq!(n1["findings"][1]["count"], 6);
    for path in &gets {
        let want = d.get_json(path);
        for s in [&a, &b] {
            assert_same(
                &want,
                &s.get_json(path),
                &format!("GET {path} via {}", s.url),
            );
        }
    }
    // Index advice starts from the reported timings (no database.url here: the candidates
    // alone, each saying what it needs), the same from DuckDB and either node.
    let advice = d.get_json(&format!("{db}/index-advice?{week}"));
    let first = &advice["advice"][0];
    assert_eq!(first["origin"], "reported", "{advice}");
    assert!(
        first["query"].as_str().unwrap().contains("email"),
        "{advice}"
    );
    for q in [&week, &day, &empty] {
        let path = format!("{db}/index-advice?{q}");
        let want = d.get_json(&path);
        for s in [&a, &b] {
            assert_same(
                &want,
                &s.get_json(&path),
                &format!("GET {path} via {}", s.url),
            );
        }
    }
}

const KEY: &str = "test-gateway-key-0123456789";

/// The gateway's own calls on a ClickHouse node (the demo provider answers): recorded in
/// ClickHouse, so another node's report shows them, with their provider and cache hits.
#[test]
fn gateway_calls_on_a_clickhouse_node_are_read_through_another() {
    let ch = ChCluster::start(2);
    let (a, _da) = node_with(&ch, &[0, 1], &[("GROWTH_GATEWAY_KEYS", KEY)]);
    let (b, _db) = node(&ch, &[1, 0]);
    for prompt in ["plan my week", "plan my week", "name a soup"] {
        let r = client()
            .post(format!("{}/v1/chat/completions", a.url))
            .header("x-api-key", KEY)
            .json(&json!({ "model": "gpt-4o-mini", "user": "cook-1",
                "messages": [{ "role": "user", "content": prompt }] }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The recorder commits in the background, within about a tenth of a second.
    let now = chrono::Utc::now().timestamp_millis();
    let window = format!(
        "/api/analytics/ai-performance?from={}&to={}",
        iso(now - 3_600_000),
        iso(now + 3_600_000)
    );
    let start = Instant::now();
    let report = loop {
        let v = b.get_json(&window);
        if v["totals"]["calls"] == 3 || start.elapsed() > Duration::from_secs(10) {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(report["totals"]["calls"], 3, "{report}");
    assert_eq!(report["totals"]["cache_hits"], 1, "{report}");
    assert_eq!(report["models"][0]["model"], "gpt-4o-mini", "{report}");
    assert_eq!(report["models"][0]["provider"], "demo", "{report}");
    assert_eq!(report["users"][0]["user"], "cook-1", "{report}");
    let stored: u64 = (0..2)
        .map(|i| ch.count(i, "SELECT count() FROM growth.ai_performance_metrics_local"))
        .sum();
    assert_eq!(stored, 3);
    assert_same(&report, &a.get_json(&window), "both nodes");
}
