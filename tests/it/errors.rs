//! What bad input, missing credentials and abuse get back: the JSON envelope, the right
//! status, and nothing written.

use serde_json::{json, Value};

use crate::helpers::{client, error_of, Server, TOKEN};

fn events_total(s: &Server) -> i64 {
    s.get_json("/api/analytics/events?range=30d")["totals"]["events"]
        .as_i64()
        .unwrap()
}

#[test]
fn a_batch_with_one_bad_item_writes_nothing() {
    let s = Server::start();
    let batch = json!([
        { "event": "a" },
        { "event": "b" },
        { "event": "c", "timestamp": "yesterday" },
        { "event": "d" },
    ]);
    let e = error_of(s.post_json("/api/analytics/events", &batch), 422);
    assert_eq!(e["code"], "invalid_field");
    assert_eq!(e["index"], 2);
    assert_eq!(e["field"], "timestamp");
    assert_eq!(events_total(&s), 0);

    let perf = json!([{ "lcp": 100 }, { "lcp": -5 }]);
    let e = error_of(s.post_json("/api/analytics/performance", &perf), 422);
    assert_eq!(
        (e["index"].clone(), e["field"].clone()),
        (json!(1), json!("lcp"))
    );
    assert_eq!(
        s.get_json("/api/analytics/performance")["totals"]["samples"],
        0
    );
}

#[test]
fn invalid_fields_are_named() {
    let s = Server::start();
    let cases: &[(&str, Value, &str)] = &[
        (
            "/api/analytics/performance",
            json!({ "lcp": 1, "cls": -0.1 }),
            "cls",
        ),
        ("/api/analytics/performance", json!({ "route": "/" }), "lcp"),
        (
            "/api/analytics/performance",
            json!({ "lcp": 1, "color": "red" }),
            "color",
        ),
        (
            "/api/analytics/performance",
            json!({ "lcp": "fast" }),
            "lcp",
        ),
        ("/api/analytics/performance", json!({ "lcp": 1e12 }), "lcp"),
        (
            "/api/analytics/ai-performance",
            json!({ "model": "m" }),
            "duration",
        ),
        (
            "/api/analytics/ai-performance",
            json!({ "duration": 5, "tokens": -1 }),
            "tokens",
        ),
        (
            "/api/analytics/database-performance",
            json!({ "query": "", "duration": 1 }),
            "query",
        ),
        (
            "/api/analytics/database-performance",
            json!({ "query": "x".repeat(20_000), "duration": 1 }),
            "query",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "timestamp": 4_102_444_800_000i64 }),
            "timestamp",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "timestamp": 1_700_000_000 }),
            "timestamp",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "user_id": "u".repeat(300) }),
            "user_id",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "properties": [1, 2] }),
            "properties",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "route": "/".repeat(3000) }),
            "route",
        ),
        (
            "/api/analytics/events",
            json!({ "event": "a", "ip": "localhost" }),
            "ip",
        ),
        (
            "/api/analytics/conversions",
            json!({ "funnel": "f" }),
            "step",
        ),
    ];
    for (path, body, field) in cases {
        let e = error_of(s.post_json(path, body), 422);
        assert_eq!(e["field"], *field, "{path} {body}: {e}");
        assert!(
            e.get("index").is_none(),
            "a single object has no index: {e}"
        );
        assert!(e["message"].as_str().unwrap().contains(field), "{e}");
    }
    assert_eq!(events_total(&s), 0);
}

#[test]
fn too_many_items_is_422() {
    let s = Server::start();
    let batch: Vec<Value> = (0..1001).map(|_| json!({ "event": "a" })).collect();
    let e = error_of(s.post_json("/api/analytics/events", &json!(batch)), 422);
    assert_eq!(e["index"], 1000);
    assert_eq!(events_total(&s), 0);
}

#[test]
fn malformed_and_oversized_bodies() {
    let s = Server::start();
    for body in ["{\"event\": ", "not json", "", "[{\"event\":\"a\"}] extra"] {
        let e = error_of(s.post("/api/analytics/events", body), 400);
        assert_eq!(e["code"], "malformed_json", "{body:?}");
    }
    let big = format!(
        r#"{{"event":"a","route":"{}"}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let e = error_of(s.post("/api/analytics/events", &big), 413);
    assert_eq!(e["code"], "payload_too_large");

    let resp = client()
        .post(format!("{}/api/analytics/events", s.url))
        .header("content-type", "application/xml")
        .body("<event/>")
        .send()
        .unwrap();
    error_of(resp, 415);
    assert_eq!(events_total(&s), 0);
}

#[test]
fn reads_need_the_admin_token() {
    let s = Server::start();
    for path in [
        "/api/analytics/performance",
        "/api/analytics/events",
        "/api/analytics/ai-performance",
        "/api/analytics/database-performance",
        "/api/analytics/conversions",
    ] {
        let resp = client().get(format!("{}{path}", s.url)).send().unwrap();
        assert_eq!(error_of(resp, 401)["code"], "unauthorized");
        let resp = client()
            .get(format!("{}{path}", s.url))
            .bearer_auth("wrong-token-0000000000")
            .send()
            .unwrap();
        error_of(resp, 401);
        assert_eq!(s.get(path).status(), 200);
    }
    let e = error_of(s.get("/api/analytics/events?range=forever"), 400);
    assert_eq!(e["code"], "invalid_parameter");
    // A multi-byte last character once sliced inside the character and dropped the connection.
    for path in [
        "/api/analytics/events?range=3%C3%85",
        "/api/analytics/performance?range=7%F0%9F%98%80",
    ] {
        let e = error_of(s.get(path), 400);
        assert_eq!(e["code"], "invalid_parameter", "{path}");
    }
    error_of(s.get("/api/nothing-here"), 404);
}

#[test]
fn cors_preflight_and_origin_allowlist() {
    let s = Server::start_with(&["--cors-origin", "https://app.example"]);
    let preflight = |origin: &str| {
        client()
            .request("OPTIONS", format!("{}/api/analytics/events", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .unwrap()
    };
    let ok = preflight("https://app.example");
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let denied = preflight("https://evil.example");
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let beacon = |origin: &str| {
        client()
            .post(format!("{}/api/analytics/events", s.url))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(r#"{"event":"a"}"#)
            .send()
            .unwrap()
    };
    assert_eq!(beacon("https://app.example").status(), 200);
    // A simple request is sent whatever CORS says, so the server itself must refuse it.
    error_of(beacon("https://evil.example"), 403);
    assert_eq!(events_total(&s), 1);
}

#[test]
fn any_origin_by_default() {
    let s = Server::start();
    let resp = client()
        .request("OPTIONS", format!("{}/api/analytics/performance", s.url))
        .header("origin", "https://site.example")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

#[test]
fn ingest_key_when_configured() {
    let s = Server::start_with(&["--ingest-key", "ingest-key-abcdefghijkl"]);
    error_of(s.post("/api/analytics/events", r#"{"event":"a"}"#), 403);
    let with_header = client()
        .post(format!("{}/api/analytics/events", s.url))
        .header("x-growth-key", "ingest-key-abcdefghijkl")
        .body(r#"{"event":"a"}"#)
        .send()
        .unwrap();
    assert_eq!(with_header.status(), 200);
    let with_query = client()
        .post(format!(
            "{}/api/analytics/events?key=ingest-key-abcdefghijkl",
            s.url
        ))
        .body(r#"{"event":"b"}"#)
        .send()
        .unwrap();
    assert_eq!(with_query.status(), 200);
    assert_eq!(events_total(&s), 2);
}

#[test]
fn per_ip_rate_limit_answers_429_with_retry_after() {
    let s = Server::start_with(&["--rate-limit", "2"]);
    let mut limited = None;
    for _ in 0..20 {
        let r = s.post("/api/analytics/events", r#"{"event":"a"}"#);
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the limit never applied");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(error_of(r, 429)["code"], "rate_limited");
    // Reads are not ingest and are not limited by it.
    let total = events_total(&s);
    assert!((2..20).contains(&total), "{total}");
    assert_eq!(
        client()
            .get(format!("{}/readyz", s.url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .status(),
        200
    );
}
