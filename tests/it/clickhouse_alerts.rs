//! Alerts and the errors stream on the ClickHouse engine: the errors read gives DuckDB's
//! answer on the same fixture, so do the alert measures; rules and silences made through
//! one node are used by every node; and with two nodes evaluating one cluster, a firing
//! rule reaches a real loopback receiver once per group, not once per node, while both
//! nodes show it firing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::alerts::{
    eventually, hooks, lcp_samples, send, server_error_recorded, state_of, Receiver,
};
use crate::clickhouse::{iso, node, node_with};
use crate::clickhouse_servers::ChCluster;
use crate::helpers::{client, free_port, Server, TOKEN};

const MIN_MS: i64 = 60_000;

/// JavaScript errors and page views at fixed times within the last hour: three errors
/// with different counts (no ties in the order), one with a newer stack than its first.
fn errors_fixture(now_ms: i64) -> (Vec<Value>, Vec<Value>) {
    let at = |min_ago: i64| iso(now_ms - min_ago * MIN_MS);
    let mut errors = Vec::new();
    for (i, session) in ["s1", "s2", "s3", "s1"].iter().enumerate() {
        errors.push(json!({
            "message": "TypeError: x is undefined", "source": "https://shop.example/app.js?v=3",
            "line": 12, "col": 5, "route": "/shop", "sessionId": session,
            "stack": format!("at f (app.js:12:5) #{i}"), "createdAt": at(50 - i as i64 * 5),
        }));
    }
    for i in 0..2 {
        errors.push(json!({
            "message": "Unhandled rejection: boom", "route": "/cart", "sessionId": "s9",
            "createdAt": at(20 - i),
        }));
    }
    errors.push(json!({
        "message": "ReferenceError: é is not defined", "filename": "https://shop.example/v.js",
        "lineno": 3, "colno": 1, "path": "/ünï?x=1", "createdAt": at(7),
    }));
    let views = (0..9)
        .map(|i| {
            json!({"event": "pageview", "route": "/shop", "userId": format!("u{i}"),
                   "sessionId": format!("s{i}"), "createdAt": at(40 - i)})
        })
        .collect();
    (errors, views)
}

#[test]
fn errors_read_the_same_on_duckdb_and_clickhouse() {
    let ch = ChCluster::start(2);
    let upstream = format!("http://127.0.0.1:{}/v1", free_port());
    // Nothing listens at the gateway's upstream: its 502 is a server error to record.
    let (c, _dc) = node_with(
        &ch,
        &[0, 1],
        &[
            ("GROWTH_GATEWAY_KEYS", "gw-test-key-0123456789"),
            ("OPENAI_BASE_URL", &upstream),
            ("OPENAI_API_KEY", "sk-test"),
            ("GROWTH_AI_MAX_RETRIES", "0"),
        ],
    );
    let d = Server::start();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let (errors, views) = errors_fixture(now_ms);
    for s in [&d, &c] {
        let r = s.post_json("/api/analytics/errors", &Value::Array(errors.clone()));
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        let r = s.post_json("/api/analytics/events", &Value::Array(views.clone()));
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    }
    let window = format!(
        "from={}&to={}",
        iso(now_ms - 60 * MIN_MS),
        iso(now_ms + MIN_MS)
    );
    let first = c.get_json(&format!("/api/analytics/errors?{window}"));
    assert_eq!(first["js_errors"], 7, "{first}");
    assert_eq!(first["page_views"], 9);
    assert_eq!(first["top"][0]["count"], 4);
    assert_eq!(first["top"][0]["sessions"], 3);
    assert_eq!(first["top"][0]["stack"], "at f (app.js:12:5) #3");
    for q in ["", "&limit=2", "&limit=1&offset=1", "&limit=5&offset=3"] {
        let path = format!("/api/analytics/errors?{window}{q}");
        assert_eq!(d.get_json(&path), c.get_json(&path), "{path}");
    }

    // The 5xx recorder writes to ClickHouse too.
    let top = server_error_recorded(&c);
    assert!(top["top"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "server"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("/v1/chat/completions")));
    assert_eq!(
        ch.count(0, "SELECT count() FROM growth.app_errors WHERE kind = 'js'"),
        7,
        "the rows are in ClickHouse, on both shards through the Distributed table"
    );
}

#[test]
fn alert_measures_are_the_same_on_duckdb_and_clickhouse() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let (errors, views) = errors_fixture(now_ms);
    // Web vitals with a re-report: the newest report of a metric counts.
    let vitals: Vec<Value> = (0..12)
        .map(|i| {
            json!({"route": if i % 3 == 0 { "/cart" } else { "/shop" }, "lcp": 1000.0 + 250.0 * f64::from(i),
                   "cls": 0.05 * f64::from(i % 4), "metricId": format!("v{i}")})
        })
        .chain([json!({"route": "/shop", "lcp": 9000.0, "metricId": "v1"})])
        .collect();
    for s in [&d, &c] {
        for (path, body) in [
            ("/api/analytics/errors", &errors),
            ("/api/analytics/events", &views),
            ("/api/analytics/performance", &vitals),
        ] {
            let r = s.post_json(path, &Value::Array(body.clone()));
            assert_eq!(r.status(), 200, "{path}: {}", r.text().unwrap());
        }
    }
    let rules = [
        json!({"name": "A", "measure": "lcp", "group_by": "route", "window": "1h"}),
        json!({"name": "B", "measure": "lcp", "aggregation": "p95", "window": "1h"}),
        json!({"name": "C", "measure": "cls", "aggregation": "max", "window": "1h"}),
        json!({"name": "D", "measure": "js_errors", "group_by": "route", "window": "1h"}),
        json!({"name": "E", "measure": "frontend_error_rate", "window": "1h"}),
        json!({"name": "F", "measure": "active_users", "window": "1h"}),
        json!({"name": "G", "measure": "session_error_rate", "window": "1h"}),
        json!({"name": "H", "measure": "page_views", "filters": {"route": "/shop"}, "window": "1h"}),
    ];
    for rule in rules {
        let dp: Value = send(&d, "POST", "/api/alerts/preview", &rule)
            .json()
            .unwrap();
        let cp: Value = send(&c, "POST", "/api/alerts/preview", &rule)
            .json()
            .unwrap();
        assert!(!dp["points"].as_array().unwrap().is_empty(), "{rule}: {dp}");
        assert_eq!(dp["points"], cp["points"], "{rule}");
    }
}

#[test]
fn rules_and_silences_made_on_one_node_hold_on_the_other() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let (b, _db) = node(&ch, &[1, 0]);
    let rule = json!({"id": "checkout_js", "name": "CheckoutErrors", "measure": "js_errors",
                      "filters": {"route": "/checkout"}, "threshold": 10, "window": "5m"});
    let r = send(&a, "POST", "/api/alerts/rules", &rule);
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let on_b = b.get_json("/api/alerts/rules/checkout_js");
    assert_eq!(on_b["threshold"], 10.0);
    assert_eq!(on_b["origin"], "api");
    let listed = b.get_json("/api/alerts");
    assert!(listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "checkout_js"));
    // The id is taken cluster-wide.
    assert_eq!(send(&b, "POST", "/api/alerts/rules", &rule).status(), 409);

    // Edited on b, seen on a; a built-in rule edited on a is edited on b.
    let mut changed = rule.clone();
    changed["threshold"] = json!(25);
    assert_eq!(
        send(&b, "PUT", "/api/alerts/rules/checkout_js", &changed).status(),
        200
    );
    assert_eq!(
        a.get_json("/api/alerts/rules/checkout_js")["threshold"],
        25.0
    );
    let r = send(
        &a,
        "PUT",
        "/api/alerts/rules/ai_tokens",
        &json!({"name": "HighAITokenUsage", "measure": "ai_tokens", "threshold": 8000, "enabled": false}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(b.get_json("/api/alerts/rules/ai_tokens")["enabled"], false);

    let r = send(
        &a,
        "POST",
        "/api/alerts/silences",
        &json!({"matchers": {"alertname": "CheckoutErrors"}, "duration": "2h", "comment": "deploy"}),
    );
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let silences = b.get_json("/api/alerts/silences");
    let s = &silences["silences"][0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["active"], true);
    assert_eq!(s["comment"], "deploy");
    // Ended through b, ended on a.
    let r = client()
        .delete(format!("{}/api/alerts/silences/{id}", b.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        a.get_json("/api/alerts/silences")["silences"][0]["active"],
        false
    );

    // Deleted through a: gone on b.
    let r = client()
        .delete(format!("{}/api/alerts/rules/checkout_js", a.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(b.get("/api/alerts/rules/checkout_js").status(), 404);
    // A node that starts later loads them as well.
    let (late, _dl) = node(&ch, &[0, 1]);
    assert_eq!(
        late.get_json("/api/alerts/rules/ai_tokens")["enabled"],
        false
    );
    assert_eq!(late.get("/api/alerts/rules/checkout_js").status(), 404);
}

/// Bodies the receiver got for rule `id` with `status`.
fn notifications(rx: &Receiver, id: &str, status: &str) -> usize {
    rx.bodies("/hook")
        .iter()
        .filter(|b| b["status"] == status && b["commonLabels"]["rule_id"] == id)
        .count()
}

#[test]
fn two_nodes_notify_once_per_group_and_both_show_the_state() {
    let ch = ChCluster::start(2);
    let port = free_port();
    let rx = Receiver::start(port);
    let env = hooks(port, &[("GROWTH_ALERTS_WEBHOOK_URL", "/hook")]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, _da) = node_with(&ch, &[0, 1], &env);
    let (b, _db) = node_with(&ch, &[1, 0], &env);
    lcp_samples(&a, "/checkout", 6500.0, 60);
    for s in [&a, &b] {
        eventually("perf_lcp fires on each node", || {
            (state_of(s, "perf_lcp", "/checkout") == "firing").then_some(())
        });
    }
    eventually("a firing notification", || {
        (notifications(&rx, "perf_lcp", "firing") > 0).then_some(())
    });
    // Several more turns of both nodes: still the one notification.
    std::thread::sleep(Duration::from_secs(16));
    assert_eq!(
        notifications(&rx, "perf_lcp", "firing"),
        1,
        "one notification per group, not one per node: {:?}",
        rx.bodies("/hook")
    );
    // Both nodes read the one shared outbox and history.
    for s in [&a, &b] {
        let sent = s.get_json("/api/alerts/notifications?status=sent");
        let lcp: Vec<&Value> = sent["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["summary"].as_str().unwrap_or("").contains("SlowLCP"))
            .collect();
        assert_eq!(lcp.len(), 1, "{sent}");
        let h = s.get_json("/api/alerts/history?range=1h&rule=perf_lcp");
        let to: Vec<&str> = h["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["to_state"].as_str().unwrap())
            .collect();
        assert_eq!(to, ["firing"], "{h}");
        assert!(s.get_json("/api/alerts/summary")["firing"].as_u64() >= Some(1));
    }
}
