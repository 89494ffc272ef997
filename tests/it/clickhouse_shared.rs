//! State every node of a ClickHouse cluster must share: a dashboard login made through one
//! node is valid on the other, and a logout through either ends it on both.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clickhouse::node;
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
