//! State every node of a ClickHouse cluster must share: a dashboard login made through one
//! node is valid on the other, and a logout through either ends it on both; a daily job
//! (the retention prune) runs on one node, not on each.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clickhouse::{node, node_with};
use crate::clickhouse_servers::ChCluster;
use crate::helpers::{client, Response, Server, TOKEN};

fn login(s: &Server) -> String {
    let r = client()
        .post(format!("{}/api/session", s.url))
        .json(&json!({ "token": TOKEN }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

fn with_cookie(s: &Server, method: &str, path: &str, cookie: &str) -> Response {
    client()
        .request(method, format!("{}{path}", s.url))
        .header("cookie", cookie)
        .header("x-requested-with", "growth-stack")
        .send()
        .unwrap()
}

/// Waits (a node re-checks what it remembers every few seconds) until `path` answers
/// `status` with `cookie` on `s`.
fn until_status(s: &Server, path: &str, cookie: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = with_cookie(s, "GET", path, cookie).status().as_u16();
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} stayed {got}, expected {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_dashboard_session_is_shared_by_every_node() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let (b, _db) = node(&ch, &[1, 0]);

    let first = login(&a);
    assert_eq!(with_cookie(&b, "GET", "/api/session", &first).status(), 200);
    assert_eq!(
        with_cookie(&b, "GET", "/api/analytics/events", &first).status(),
        200,
        "a session made on one node opens the other's reads"
    );
    let second = login(&b);
    let third = login(&a);
    assert_eq!(
        with_cookie(&a, "GET", "/api/session", &second).status(),
        200
    );

    // Logging out through b ends the session on a too (a remembers it for a few seconds).
    assert_eq!(with_cookie(&a, "GET", "/api/session", &first).status(), 200);
    assert_eq!(
        with_cookie(&b, "DELETE", "/api/session", &first).status(),
        200
    );
    assert_eq!(with_cookie(&b, "GET", "/api/session", &first).status(), 401);
    until_status(&a, "/api/session", &first, 401);
    assert_eq!(
        with_cookie(&a, "GET", "/api/session", &second).status(),
        200
    );

    // "Log out everywhere" through a ends every other session on both nodes.
    let r = with_cookie(&a, "DELETE", "/api/sessions", &third);
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["ended"], 2, "{body}");
    until_status(&b, "/api/session", &second, 401);
    until_status(&b, "/api/session", &third, 401);
    until_status(&a, "/api/session", &second, 401);

    // A new login after that works everywhere.
    let fourth = login(&b);
    assert_eq!(
        with_cookie(&a, "GET", "/api/session", &fourth).status(),
        200
    );
}

fn events_in_30d(s: &Server) -> u64 {
    s.get_json("/api/analytics/events?range=30d")["totals"]["events"]
        .as_u64()
        .unwrap()
}

#[test]
fn retention_runs_on_one_node_a_day_and_prunes_the_cluster() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let now = chrono::Utc::now().timestamp_millis();
    let old = now - 5 * 86_400_000;
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let items: Vec<_> = (0..10i64)
        .map(|i| {
            let at = if i < 6 { old + i * 1000 } else { now - i * 1000 };
            json!({ "event": "visit", "userId": format!("p{i}"), "timestamp": at, "createdAt": iso(at) })
        })
        .collect();
    assert_eq!(
        a.post_json("/api/analytics/events", &json!(items)).status(),
        200
    );
    assert_eq!(events_in_30d(&a), 10);

    // Two nodes with a 2-day retention start together; each prunes at start-up, but only
    // the one whose claim on today's prune came first touches the shared tables.
    let keep = [("GROWTH_RETENTION_EVENTS_DAYS", "2")];
    let (b, c) = std::thread::scope(|t| {
        let b = t.spawn(|| node_with(&ch, &[0, 1], &keep));
        let c = t.spawn(|| node_with(&ch, &[1, 0], &keep));
        (b.join().unwrap(), c.join().unwrap())
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while events_in_30d(&a) != 4 {
        assert!(Instant::now() < deadline, "old events were not pruned");
        std::thread::sleep(Duration::from_millis(250));
    }
    let today = now.div_euclid(86_400_000);
    assert_eq!(
        ch.count(
            0,
            &format!("SELECT count() FROM growth.job_leases WHERE job = 'retention:{today}'")
        ),
        2,
        "both nodes claimed today's prune"
    );
    for i in 0..2 {
        assert_eq!(
            ch.count(
                i,
                "SELECT count() FROM system.mutations WHERE database = 'growth' AND table = 'user_events_local'"
            ),
            1,
            "server {i}: one node deleted, once"
        );
    }
    // An explicit prune runs at once (no lease) and finds nothing left to delete.
    let pruned = client()
        .post(format!("{}/api/admin/prune", b.0.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(pruned.status(), 200);
    let pruned: serde_json::Value = pruned.json().unwrap();
    assert_eq!(pruned["streams"]["events"], 0, "{pruned}");
    assert_eq!(events_in_30d(&c.0), 4);
}
