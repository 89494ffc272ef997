//! Long ranges from the growth roll-up, over HTTP: exact event counts whatever part of a
//! range comes from the roll-up, people and sessions listed in `estimated`, and events
//! sent late for days already rolled up (after a restart, which folds at start-up) counted.

use serde_json::{json, Value};

use crate::helpers::{client, Server, TOKEN};

const DAY_MS: i64 = 86_400_000;

/// Events of `people` people on the day `days_ago` days back, at noon UTC of that day,
/// each doing `signup` once and `viewed` twice, one session each.
fn batch(days_ago: i64, people: &[&str]) -> Vec<Value> {
    let now = chrono::Utc::now().timestamp_millis();
    let noon = (now / DAY_MS - days_ago) * DAY_MS + DAY_MS / 2;
    let noon = noon.min(now - 60_000);
    let mut items = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for (k, event) in ["signup", "viewed", "viewed"].into_iter().enumerate() {
            items.push(json!({
                "event": event,
                "user_id": p,
                "session_id": format!("{p}-{days_ago}"),
                "timestamp": noon - 1000 * (i as i64 * 3 + k as i64),
            }));
        }
    }
    items
}

fn send(s: &Server, items: &[Value]) {
    let r = client()
        .post(format!("{}/api/analytics/events", s.url))
        .json(&Value::Array(items.to_vec()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

fn events(s: &Server, range: &str) -> Value {
    let r = client()
        .get(format!("{}/api/analytics/events?range={range}", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn top(v: &Value, event: &str) -> (u64, u64) {
    let row = v["top_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"] == event)
        .unwrap_or_else(|| panic!("{event} in {v}"));
    (
        row["count"].as_u64().unwrap(),
        row["users"].as_u64().unwrap(),
    )
}

#[test]
fn long_ranges_count_exactly_and_say_what_is_estimated() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[], &[]);
    send(&s, &batch(5, &["a", "b", "c"]));
    send(&s, &batch(2, &["a", "d"]));
    send(&s, &batch(0, &["e"]));
    let v = events(&s, "30d");
    assert_eq!(v["totals"]["events"], 18);
    assert_eq!(v["totals"]["users"], 5);
    assert_eq!(v["totals"]["sessions"], 6);
    assert_eq!(top(&v, "viewed"), (12, 5));
    assert_eq!(top(&v, "signup"), (6, 5));
    let estimated: Vec<&str> = v["estimated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "totals.users",
        "totals.sessions",
        "top_events.users",
        "series.users",
    ] {
        assert!(estimated.contains(&f), "{f} in {estimated:?}");
    }
    // One point per day with events, in order, summing to the total.
    let series = v["series"].as_array().unwrap();
    let counts: Vec<u64> = series
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [9, 6, 3]);
    let growth = s.get_json("/api/analytics/growth?range=30d");
    assert_eq!(growth["totals"]["events"], 18);
    assert_eq!(growth["totals"]["users"], 5);
    assert!(growth["estimated"]
        .as_array()
        .unwrap()
        .contains(&json!("breakdowns.users")));
    assert_eq!(
        events(&s, "24h")["totals"]["events"].as_u64().unwrap() % 3,
        0
    );

    // A restart folds everything into the roll-up; then events arrive late for a day
    // already rolled up and are counted with it.
    s.terminate();
    let s = Server::start_in(dir.path(), &[], &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(events(&s, "30d")["totals"]["events"], 18);
    send(&s, &batch(5, &["f"]));
    let v = events(&s, "30d");
    assert_eq!(v["totals"]["events"], 21);
    assert_eq!(v["totals"]["users"], 6);
    assert_eq!(top(&v, "signup"), (7, 6));
    let counts: Vec<u64> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [12, 6, 3]);
}
