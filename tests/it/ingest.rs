//! Round trips through every ingest stream and its read.

use serde_json::{json, Value};

use crate::helpers::{client, Server};

fn ok(resp: crate::helpers::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn performance_round_trip_with_p75_and_ratings() {
    let s = Server::start();
    let samples: Vec<Value> = (1..=4)
        .map(|i| json!({ "route": "/recipes", "lcp": 1000.0 * i as f64, "cls": 0.05, "inp": 100, "session_id": "s1" }))
        .collect();
    assert_eq!(
        ok(s.post_json("/api/analytics/performance", &json!(samples)))["accepted"],
        4
    );
    ok(s.post_json(
        "/api/analytics/performance",
        &json!({ "route": "/", "ttfb": 300, "userId": "7f3e8a0c-6d4b-4e1a-9b2f-0c8d5e6f7a81" }),
    ));

    let r = s.get_json("/api/analytics/performance?range=1h");
    assert_eq!(r["totals"]["samples"], 5);
    assert_eq!(r["totals"]["routes"], 2);
    let lcp = &r["vitals"]["lcp"];
    assert_eq!(lcp["count"], 4);
    // p75 of 1000, 2000, 3000, 4000 interpolated: 3250 ms, needs improvement.
    assert_eq!(lcp["p75"], 3250.0);
    assert_eq!(lcp["rating"], "needs-improvement");
    assert_eq!(lcp["good_share"], 0.5);
    assert_eq!(r["vitals"]["cls"]["rating"], "good");
    assert_eq!(r["vitals"]["fid"]["count"], 0);
    assert_eq!(r["routes"][0]["route"], "/recipes");
    assert_eq!(r["routes"][0]["samples"], 4);
    assert_eq!(r["rows"].as_array().unwrap().len(), 5);
    assert_eq!(
        r["rows"][0]["user_id"], "7f3e8a0c-6d4b-4e1a-9b2f-0c8d5e6f7a81",
        "newest first"
    );
}

#[test]
fn ai_round_trip() {
    let s = Server::start();
    let calls = json!([
        { "model": "gpt-4o-mini", "duration": 1000, "tokens": 500, "cache_hit": false },
        { "model": "gpt-4o-mini", "duration": 10, "tokens": 0, "cacheHit": true },
        { "model": "claude-3-5-haiku", "duration": 3000, "tokens": 4000, "error": "upstream timeout" },
        { "model": "claude-3-5-haiku", "duration": 2000, "tokens": 1500, "success": true, "requestId": "r-1", "endpoint": "/v1/messages" },
    ]);
    ok(s.post_json("/api/analytics/ai-performance", &calls));
    let r = s.get_json("/api/analytics/ai-performance?range=24h");
    let t = &r["totals"];
    assert_eq!(t["calls"], 4);
    assert_eq!(t["errors"], 1);
    assert_eq!(t["error_rate"], 0.25);
    assert_eq!(t["cache_hits"], 1);
    assert_eq!(t["cache_hit_rate"], 0.25);
    assert_eq!(t["tokens"], 6000);
    assert_eq!(t["avg_duration"], 1502.5);
    assert_eq!(r["models"].as_array().unwrap().len(), 2);
    let failed = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["error"].is_string())
        .unwrap();
    assert_eq!(
        failed["success"], false,
        "an error without success means failure"
    );
}

#[test]
fn database_round_trip_counts_slow_queries() {
    let s = Server::start();
    let q = "SELECT * FROM recipes WHERE user_id = $1";
    let timings = json!([
        { "query": q, "duration": 12.5, "rows": 20 },
        { "query": q, "duration": 1500, "rows": 20 },
        { "query": "SELECT 1", "duration": 0.2, "cached": true },
    ]);
    ok(s.post_json("/api/analytics/database-performance", &timings));
    let r = s.get_json("/api/analytics/database-performance");
    let t = &r["totals"];
    assert_eq!(t["queries"], 3);
    assert_eq!(
        t["slow"], 1,
        "1500 ms is over the default 1000 ms threshold"
    );
    assert_eq!(t["slow_threshold"], 1000.0);
    assert_eq!(t["cached"], 1);
    assert_eq!(r["slowest"][0]["query"], q);
    assert_eq!(r["slowest"][0]["calls"], 2);
}

#[test]
fn events_and_conversions_round_trip() {
    let s = Server::start();
    let user = "0b6c3c1e-2f4a-4c55-8a77-3d1f9e2b4c60";
    let events = json!([
        { "event": "recipe_clicked", "user_id": user, "session_id": "a", "properties": { "recipeId": "r1", "category": "dinner" }, "route": "/recipes" },
        { "event": "recipe_clicked", "session_id": "b" },
        { "event": "recipe_saved", "user_id": user, "session_id": "a", "referrer": "https://example.com/" },
    ]);
    ok(s.post_json("/api/analytics/events", &events));
    ok(s.post_json(
        "/api/analytics/conversions",
        &json!({ "funnel": "Recipe Discovery", "step": "recipe_viewed", "properties": { "recipeId": "r1" }, "user_id": user }),
    ));
    let r = s.get_json("/api/analytics/events?range=7d");
    assert_eq!(r["totals"]["events"], 3);
    // The event without a user id counts as one anonymous visitor.
    assert_eq!(r["totals"]["users"], 2);
    assert_eq!(r["totals"]["sessions"], 2);
    assert_eq!(r["totals"]["conversions"], 1);
    assert_eq!(
        r["top_events"][0],
        json!({ "event": "recipe_clicked", "count": 2, "users": 2 })
    );
    let with_props = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["properties"].is_object())
        .unwrap();
    assert_eq!(
        with_props["properties"]["category"], "dinner",
        "properties come back as JSON"
    );

    let c = s.get_json("/api/analytics/conversions?range=30d");
    assert_eq!(c["totals"]["conversions"], 1);
    assert_eq!(c["steps"][0]["funnel"], "Recipe Discovery");
    assert_eq!(c["rows"][0]["properties"]["recipeId"], "r1");
}

#[test]
fn beacons_as_text_plain_and_server_filled_fields() {
    let s = Server::start();
    let resp = client()
        .post(format!("{}/api/analytics/events", s.url))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", "Mozilla/5.0 test-browser")
        .body(r#"{"event":"page_view","route":"/"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = s.get_json("/api/analytics/events");
    let row = &r["rows"][0];
    assert_eq!(row["user_agent"], "Mozilla/5.0 test-browser");
    assert_eq!(row["ip"], "127.0.0.0", "IPs are truncated by default");
    assert_eq!(row["id"].as_str().unwrap().len(), 36);
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(row["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
}

#[test]
fn ip_can_be_hashed_or_dropped() {
    let s = Server::start_with(&["--ip", "hash"]);
    ok(s.post_json(
        "/api/analytics/events",
        &json!({ "event": "a", "ip": "203.0.113.9" }),
    ));
    let ip = s.get_json("/api/analytics/events")["rows"][0]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ip.len(), 32);
    assert!(!ip.contains("203"));

    let s = Server::start_with(&["--ip", "none"]);
    ok(s.post_json("/api/analytics/events", &json!({ "event": "a" })));
    assert!(s.get_json("/api/analytics/events")["rows"][0]["ip"].is_null());
}

#[test]
fn windows_and_pages() {
    let s = Server::start();
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    ok(s.post_json(
        "/api/analytics/events",
        &json!({ "event": "old", "created_at": three_days_ago }),
    ));
    let batch: Vec<Value> = (0..7)
        .map(|i| json!({ "event": format!("e{i}") }))
        .collect();
    ok(s.post_json("/api/analytics/events", &json!(batch)));

    assert_eq!(
        s.get_json("/api/analytics/events?range=24h")["totals"]["events"],
        7
    );
    assert_eq!(
        s.get_json("/api/analytics/events?range=7d")["totals"]["events"],
        8
    );
    let from = (chrono::Utc::now() - chrono::Duration::days(4)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%SZ");
    let r = s.get_json(&format!("/api/analytics/events?from={from}&to={to}"));
    assert_eq!(r["totals"]["events"], 1);
    assert_eq!(r["rows"][0]["event"], "old");

    let p1 = s.get_json("/api/analytics/events?range=7d&limit=3");
    let p3 = s.get_json("/api/analytics/events?range=7d&limit=3&offset=6");
    assert_eq!(p1["rows"].as_array().unwrap().len(), 3);
    assert_eq!(p3["rows"].as_array().unwrap().len(), 2);
    assert_eq!(p3["page"], json!({ "limit": 3, "offset": 6, "total": 8 }));
    assert_eq!(p3["rows"][1]["event"], "old", "oldest last");
}

/// Apps name people their own way; every stream keeps the same id as text, so one person
/// can be followed from a slow page to their slow queries.
#[test]
fn every_stream_takes_the_apps_own_user_ids() {
    let s = Server::start();
    ok(s.post_json(
        "/api/analytics/performance",
        &json!({ "route": "/", "lcp": 1200, "user_id": "user-42" }),
    ));
    ok(s.post_json(
        "/api/analytics/performance",
        &json!({ "route": "/", "lcp": 1300, "userId": 7 }),
    ));
    ok(s.post_json(
        "/api/analytics/database-performance",
        &json!({ "query": "SELECT 1", "duration": 2.0, "userId": "user-42" }),
    ));
    let perf = s.get_json("/api/analytics/performance");
    let users: Vec<&str> = perf["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["user_id"].as_str())
        .collect();
    assert!(users.contains(&"user-42") && users.contains(&"7"), "{perf}");
    let db = s.get_json("/api/analytics/database-performance");
    assert_eq!(db["rows"][0]["user_id"], "user-42", "{db}");
}
