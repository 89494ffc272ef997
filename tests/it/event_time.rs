//! Event time over HTTP: funnels and ranges read when people acted, not when a batch
//! arrived. One batch with client timestamps, one untimed batch and one from a device whose
//! clock is off each give the funnel a person computes by hand: five sign up, two of them
//! view a recipe, one of those saves it: [5, 2, 1].

use serde_json::{json, Value};

use crate::helpers::{client, error_of, funnel_step_users, Response, Server};

const STEPS: [&str; 3] = ["signup", "recipe_viewed", "recipe_saved"];

/// (person, step index) pairs of the hand-computed funnel, in the order people acted.
fn acts() -> Vec<(&'static str, usize)> {
    let mut v: Vec<(&str, usize)> = ["p1", "p2", "p3", "p4", "p5"]
        .into_iter()
        .map(|p| (p, 0))
        .collect();
    v.extend([("p1", 1), ("p2", 1), ("p1", 2)]);
    // Steps out of order do not count: p3 saves without having viewed.
    v.push(("p3", 2));
    v
}

fn funnel(s: &Server, range: &str) -> Vec<u64> {
    let body = json!({ "steps": STEPS, "window": "1h", "range": range });
    funnel_step_users(s, &body)
}

fn post(s: &Server, query: &str, items: &[Value]) -> Response {
    client()
        .post(format!("{}/api/analytics/events{query}", s.url))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Value::Array(items.to_vec()).to_string())
        .send()
        .unwrap()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn batch_with_client_timestamps_orders_by_them() {
    let s = Server::start();
    let t0 = now_ms() - 120_000;
    // Sent newest first: only the timestamps tell the order.
    let mut items: Vec<Value> = acts()
        .into_iter()
        .enumerate()
        .map(|(i, (p, k))| json!({ "event": STEPS[k], "userId": p, "timestamp": t0 + i as i64 * 1000 }))
        .collect();
    items.reverse();
    assert_eq!(post(&s, "", &items).status(), 200);
    assert_eq!(funnel(&s, "24h"), [5, 2, 1]);
    let e = s.get_json("/api/analytics/events?range=1h&limit=100");
    let row = &e["rows"][0];
    assert_eq!(row["event"], "recipe_saved");
    assert!(row["event_time"].as_str().unwrap() < row["created_at"].as_str().unwrap());
}

#[test]
fn untimed_batch_keeps_array_order() {
    let s = Server::start();
    let items: Vec<Value> = acts()
        .into_iter()
        .map(|(p, k)| json!({ "event": STEPS[k], "userId": p }))
        .collect();
    assert_eq!(post(&s, "", &items).status(), 200);
    assert_eq!(funnel(&s, "1h"), [5, 2, 1]);

    // The guide's conversions, three steps in one request, read in the order sent.
    let c: Vec<Value> = [
        ("u1", "signup_started"),
        ("u2", "signup_started"),
        ("u1", "signup_completed"),
        ("u2", "plan_chosen"),
    ]
    .into_iter()
    .map(|(u, step)| json!({ "funnel": "Onboarding", "step": step, "userId": u }))
    .collect();
    assert_eq!(
        s.post_json("/api/analytics/conversions", &Value::Array(c))
            .status(),
        200
    );
    let f = s.get_json("/api/analytics/funnels/Onboarding?range=1h");
    assert_eq!(f["steps"][0]["event"], "signup_started");
    assert_eq!(f["steps"][0]["users"], 2);
    assert_eq!(f["steps"][1]["users"], 1);
}

#[test]
fn skewed_clock_is_corrected_by_sent_at() {
    let s = Server::start();
    let hour = 3_600_000i64;
    // A phone whose clock is 3 h fast queued the acts a second apart, then sent them.
    let fast = now_ms() + 3 * hour;
    let acts = acts();
    let n = acts.len() as i64;
    let items: Vec<Value> = acts
        .iter()
        .enumerate()
        .map(|(i, (p, k))| {
            json!({ "event": STEPS[*k], "userId": p, "timestamp": fast - (n - i as i64) * 1000 })
        })
        .collect();
    // Once per request, as gs.js sends it with sendBeacon.
    let r = post(&s, &format!("?sent_at={fast}"), &items);
    assert_eq!(r.status(), 200);
    assert_eq!(funnel(&s, "1h"), [5, 2, 1]);
    // Per item, from a clock two days slow: it lands now, not two days ago.
    let slow = now_ms() - 48 * hour;
    let items: Vec<Value> = ["q1", "q2"]
        .iter()
        .enumerate()
        .map(|(i, p)| json!({ "event": "signup", "userId": p, "timestamp": slow - 5000 + i as i64, "sentAt": slow }))
        .collect();
    assert_eq!(post(&s, "", &items).status(), 200);
    assert_eq!(funnel(&s, "1h")[0], 7);
    let e = s.get_json("/api/analytics/events?range=1h");
    assert_eq!(e["totals"]["events"], 11);

    // A fast clock without sent_at cannot be corrected: it is filed at the receive time,
    // never in the future.
    let ahead = json!({ "event": "late", "userId": "z", "timestamp": now_ms() + 3 * hour });
    assert_eq!(post(&s, "", &[ahead]).status(), 200);
    let e = s.get_json("/api/analytics/events?range=1h");
    assert_eq!(e["totals"]["events"], 12);
}

#[test]
fn bad_times_are_422_naming_the_field() {
    let s = Server::start();
    let ok = json!({ "event": "a", "timestamp": now_ms() });
    let e = error_of(post(&s, "?sent_at=soon", std::slice::from_ref(&ok)), 422);
    assert_eq!(e["field"], "sent_at");
    let e = error_of(
        post(&s, "?sent_at=1700000000", std::slice::from_ref(&ok)),
        422,
    );
    assert_eq!(e["field"], "sent_at");
    let bad = json!({ "event": "a", "timestamp": now_ms(), "sent_at": 1_700_000_000 });
    let e = error_of(post(&s, "", &[ok, bad]), 422);
    assert_eq!(
        (e["field"].clone(), e["index"].clone()),
        (json!("sent_at"), json!(1))
    );
    // Other streams take the same rule.
    let t = now_ms();
    for (path, body) in [
        (
            "/api/analytics/database-performance",
            json!({ "query": "q", "duration": 1, "timestamp": t, "sentAt": 5 }),
        ),
        (
            "/api/analytics/ai-performance",
            json!({ "duration": 1, "timestamp": t, "sentAt": 5 }),
        ),
        (
            "/api/analytics/conversions",
            json!({ "funnel": "f", "step": "s", "timestamp": t, "sentAt": 5 }),
        ),
        (
            "/api/analytics/performance",
            json!({ "lcp": 1, "timestamp": t, "sentAt": 5 }),
        ),
    ] {
        let r = client()
            .post(format!("{}{path}", s.url))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(error_of(r, 422)["field"], "sent_at", "{path}");
    }
    let e = s.get_json("/api/analytics/events?range=1h");
    assert_eq!(e["totals"]["events"], 0, "a refused batch writes nothing");
}
