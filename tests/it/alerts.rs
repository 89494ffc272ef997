//! Alerts through HTTP: default rules fire and resolve on real samples, notifications reach
//! a real loopback receiver (late, rate-limited, Slack- and Discord-shaped), silences hold
//! them back, declines compare with a week earlier, rules and errors have their APIs.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{client, error_of, free_port, row_where, Server, TOKEN};

/// What the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) path: String,
    pub(crate) body: Value,
    at: Instant,
}

/// One scripted answer: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, String);

/// A webhook receiver on 127.0.0.1: records every request and answers from a script
/// (200 once the script is empty).
#[derive(Clone)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    pub(crate) fn start(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let r = Receiver {
            got: Arc::default(),
            script: Arc::default(),
        };
        let me = r.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(stream));
            }
        });
        r
    }

    /// HTTP/1.1 with keep-alive: the client pools its connection.
    fn serve(&self, stream: TcpStream) {
        let mut out = stream.try_clone().unwrap();
        let mut rd = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if rd.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; len];
            if rd.read_exact(&mut body).is_err() {
                return;
            }
            self.got.lock().unwrap().push(Got {
                path,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                at: Instant::now(),
            });
            let (status, headers, text) =
                self.script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((200, vec![], "ok".into()));
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
                text.len()
            );
            for (k, v) in headers {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&text);
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }

    pub(crate) fn bodies(&self, path: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .map(|g| g.body.clone())
            .collect()
    }

    fn requests(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// Makes the AI gateway answer a 5xx (its provider is down) and returns the errors page
/// once it counts that server error.
pub(crate) fn server_error_recorded(s: &Server) -> Value {
    let r = client()
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth("gw-test-key-0123456789")
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .unwrap();
    assert!(r.status().as_u16() >= 500, "{:?}", r.status());
    eventually("the server error is recorded", || {
        let t = s.get_json("/api/analytics/errors?range=1h");
        (t["server_errors"].as_i64() >= Some(1)).then_some(t)
    })
}

/// Polls until `f` gives a value (a minute at most: a hang, not a timing, fails the test).
pub(crate) fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Short timers: evaluate every second, fire at once, group for a second.
fn fast(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GROWTH_ALERTS_INTERVAL", "1".to_string()),
        ("GROWTH_ALERTS_DEFAULT_FOR", "0".to_string()),
        ("GROWTH_ALERTS_GROUP_WAIT", "1s".to_string()),
        ("GROWTH_ALERTS_GROUP_INTERVAL", "1s".to_string()),
        ("GROWTH_ALERTS_REPEAT_INTERVAL", "4h".to_string()),
    ];
    env.extend(extra.iter().cloned());
    env
}

/// `fast`, with each of these channel keys pointing at a path of the receiver on `port`.
pub(crate) fn hooks(port: u16, channels: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let urls: Vec<(&'static str, String)> = channels
        .iter()
        .map(|(key, path)| (*key, format!("http://127.0.0.1:{port}{path}")))
        .collect();
    fast(&urls)
}

fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_in(dir, &[], &env)
}

pub(crate) fn lcp_samples(s: &Server, route: &str, lcp: f64, n: usize) {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"route": route, "lcp": lcp, "metricId": format!("{route}-{lcp}-{i}")}))
        .collect();
    let r = s.post_json("/api/analytics/performance", &Value::Array(items));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

/// The series of rule `id` for `series` ("" when the rule is not split).
pub(crate) fn series(s: &Server, id: &str, name: &str) -> Option<Value> {
    let all = s.get_json("/api/alerts");
    let rule = all["rules"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)?
        .clone();
    rule["series"]
        .as_array()?
        .iter()
        .find(|x| x["series"] == name)
        .cloned()
}

pub(crate) fn state_of(s: &Server, id: &str, name: &str) -> String {
    series(s, id, name)
        .and_then(|x| x["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn send(s: &Server, method: &str, path: &str, body: &Value) -> crate::helpers::Response {
    client()
        .request(method, format!("{}{path}", s.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .unwrap()
}

#[test]
fn lcp_fires_reaches_a_late_receiver_then_resolves() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &hooks(port, &[("GROWTH_ALERTS_WEBHOOK_URL", "/hook")]),
    );
    lcp_samples(&s, "/checkout", 6500.0, 60);
    eventually("the LCP rule fires", || {
        (state_of(&s, "perf_lcp", "/checkout") == "firing").then_some(())
    });
    let row = series(&s, "perf_lcp", "/checkout").unwrap();
    assert_eq!(row["value"], 6500.0);
    assert_eq!(row["labels"]["route"], "/checkout");
    // Nobody listens yet: the notification waits in the outbox and is retried.
    eventually("a failed attempt", || {
        let n = s.get_json("/api/alerts/notifications");
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["attempts"].as_i64() >= Some(1) && x["status"] == "pending")
            .cloned()
    });

    let rx = Receiver::start(port);
    let firing = eventually("a firing payload", || {
        rx.bodies("/hook")
            .into_iter()
            .find(|b| b["status"] == "firing")
    });
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "webhook");
    assert_eq!(firing["groupLabels"]["alertname"], "SlowLCP");
    assert_eq!(firing["commonLabels"]["severity"], "warning");
    let a = &firing["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["alertname"], "SlowLCP");
    assert_eq!(a["labels"]["route"], "/checkout");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(a["startsAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("6500 ms"),
        "{a}"
    );
    assert!(a["generatorURL"].as_str().unwrap().contains("#/alerts"));

    // Fast page views push p75 under 4 s: resolved.
    lcp_samples(&s, "/checkout", 1000.0, 200);
    let resolved = eventually("a resolved payload", || {
        rx.bodies("/hook")
            .into_iter()
            .find(|b| b["status"] == "resolved")
    });
    let a = &resolved["alerts"][0];
    assert_eq!(a["status"], "resolved");
    assert_eq!(a["labels"]["route"], "/checkout");
    assert_ne!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"], firing["alerts"][0]["fingerprint"]);
    assert_eq!(state_of(&s, "perf_lcp", "/checkout"), "resolved");

    // The history keeps every change, and a restart keeps it.
    let h = s.get_json("/api/alerts/history?rule=perf_lcp");
    let changes: Vec<String> = h["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}>{}",
                c["from_state"].as_str().unwrap(),
                c["to_state"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        changes.contains(&"inactive>firing".to_string()),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"firing>resolved".to_string()),
        "{changes:?}"
    );
    drop(s);
    let s = start(dir.path(), &fast(&[]));
    let h = s.get_json("/api/alerts/history?rule=perf_lcp");
    assert!(h["changes"].as_array().unwrap().len() >= 2);
}

#[test]
fn firing_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &fast(&[]));
    lcp_samples(&s, "/", 6500.0, 30);
    eventually("firing", || {
        (state_of(&s, "perf_lcp", "/") == "firing").then_some(())
    });
    let since = series(&s, "perf_lcp", "/").unwrap()["firing_since"].clone();
    assert!(s.terminate().success());
    let s = start(dir.path(), &fast(&[]));
    // Still the same alert: firing since the first start, not a new one.
    let row = series(&s, "perf_lcp", "/").unwrap();
    assert_eq!(row["state"], "firing");
    assert_eq!(row["firing_since"], since);
}

#[test]
fn a_silence_holds_notifications_back_until_it_ends() {
    let port = free_port();
    let rx = Receiver::start(port);
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &hooks(port, &[("GROWTH_ALERTS_WEBHOOK_URL", "/hook")]),
    );
    let r = send(
        &s,
        "POST",
        "/api/alerts/silences",
        &json!({"matchers": {"alertname": "SlowLCP"}, "duration": "1h", "comment": "deploying"}),
    );
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let silence: Value = r.json().unwrap();
    lcp_samples(&s, "/slow", 6500.0, 60);
    eventually("firing", || {
        (state_of(&s, "perf_lcp", "/slow") == "firing").then_some(())
    });
    let shown = series(&s, "perf_lcp", "/slow").unwrap();
    assert_eq!(shown["silenced"], true);
    // Several rounds later, with group_wait long past, nothing went out.
    let round = |s: &Server| {
        s.get_json("/api/alerts")["last_round"]["at"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let first = round(&s);
    for _ in 0..3 {
        let before = round(&s);
        eventually("another round", || (round(&s) != before).then_some(()));
    }
    assert_ne!(round(&s), first);
    assert!(
        rx.bodies("/hook")
            .iter()
            .all(|b| b["groupLabels"]["alertname"] != "SlowLCP"),
        "{:?}",
        rx.bodies("/hook")
    );

    // Bad silences are refused with the field named.
    let bad = send(
        &s,
        "POST",
        "/api/alerts/silences",
        &json!({"matchers": {}, "duration": "1h"}),
    );
    assert!(error_of(bad, 422)["message"]
        .as_str()
        .unwrap()
        .contains("matchers"));

    // Ending it lets the firing alert through.
    let r = client()
        .delete(format!(
            "{}/api/alerts/silences/{}",
            s.url,
            silence["id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let body = eventually("the notification after the silence", || {
        rx.bodies("/hook")
            .into_iter()
            .find(|b| b["groupLabels"]["alertname"] == "SlowLCP")
    });
    assert_eq!(body["alerts"][0]["labels"]["route"], "/slow");
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let port = free_port();
    let rx = Receiver::start(port);
    rx.script.lock().unwrap().push_back((
        429,
        vec![("retry-after", "2".to_string())],
        r#"{"message":"slow down"}"#.into(),
    ));
    // Discord says it in the body, in seconds.
    rx.script.lock().unwrap().push_back((
        429,
        vec![],
        r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#.into(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &hooks(port, &[("GROWTH_ALERTS_WEBHOOK_URL", "/hook")]),
    );
    let r = send(&s, "POST", "/api/alerts/test", &json!({}));
    assert_eq!(r.status(), 202, "{}", r.text().unwrap());
    let reqs = eventually("three attempts", || {
        let r = rx.requests();
        (r.len() >= 3).then_some(r)
    });
    // Retried no sooner than the receiver asked: 2 s from the header, 1.5 s from the body
    // (the plain back-off would have been about 1 s, then 2 s).
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_millis(1950),
        "{:?}",
        reqs[1].at - reqs[0].at
    );
    assert!(
        reqs[2].at - reqs[1].at >= Duration::from_millis(1450),
        "{:?}",
        reqs[2].at - reqs[1].at
    );
    assert_eq!(
        reqs[2].body["alerts"][0]["labels"]["alertname"],
        "TestNotification"
    );
    let n = eventually("delivered", || {
        let n = s.get_json("/api/alerts/notifications?status=sent");
        n["notifications"].as_array().unwrap().first().cloned()
    });
    assert_eq!(n["attempts"], 3);
    assert_eq!(rx.requests().len(), 3, "delivered once, not again");
}

#[test]
fn slack_and_discord_get_their_own_shapes() {
    let port = free_port();
    let rx = Receiver::start(port);
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &hooks(
            port,
            &[
                ("GROWTH_ALERTS_SLACK_WEBHOOK_URL", "/slack"),
                ("GROWTH_ALERTS_DISCORD_WEBHOOK_URL", "/discord"),
            ],
        ),
    );
    lcp_samples(&s, "/pricing", 7000.0, 40);
    let slack = eventually("slack", || rx.bodies("/slack").into_iter().next());
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("*[FIRING:1] SlowLCP*"), "{text}");
    assert!(
        text.contains("/pricing") && text.contains("7000 ms"),
        "{text}"
    );
    let discord = eventually("discord", || rx.bodies("/discord").into_iter().next());
    assert_eq!(discord["content"], "[FIRING:1] SlowLCP");
    let embed = &discord["embeds"][0];
    assert!(embed["description"].as_str().unwrap().contains("/pricing"));
    assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
    // "Send test" to one channel by name.
    let r = send(
        &s,
        "POST",
        "/api/alerts/test",
        &json!({"channel": "discord"}),
    );
    assert_eq!(r.status(), 202);
    eventually("the test message", || {
        rx.bodies("/discord").into_iter().find(|b| {
            b["content"]
                .as_str()
                .unwrap_or("")
                .contains("TestNotification")
        })
    });
    let r = send(&s, "POST", "/api/alerts/test", &json!({"channel": "pager"}));
    assert_eq!(r.status(), 404);
}

fn users(s: &Server, route: &str, n: usize, ago: chrono::Duration) {
    let at = (chrono::Utc::now() - ago).to_rfc3339();
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"event": "pageview", "route": route, "user_id": format!("{route}-u{i}"), "created_at": at}))
        .collect();
    let r = s.post_json("/api/analytics/events", &Value::Array(items));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

#[test]
fn a_decline_fires_on_a_week_over_week_drop_not_on_a_weekend_dip() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &fast(&[]));
    for route in ["/a", "/b"] {
        let rule = json!({
            "name": format!("Users{}", route.trim_start_matches('/')),
            "measure": "active_users", "filters": {"route": route},
            "condition": "decline", "threshold": 20, "window": "1h", "for": 0,
        });
        let r = send(&s, "POST", "/api/alerts/rules", &rule);
        assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    }
    let hours = chrono::Duration::minutes;
    // /a: 100 users in this hour last week, 40 now: a real drop.
    users(&s, "/a", 100, chrono::Duration::days(7) + hours(30));
    users(&s, "/a", 40, hours(30));
    // /b: a weekend: 100 users yesterday (a weekday), 40 today, and 40 on the same day
    // last week. Day over day it is a 60% drop; week over week it is normal.
    users(&s, "/b", 40, chrono::Duration::days(7) + hours(30));
    users(&s, "/b", 100, chrono::Duration::days(1) + hours(30));
    users(&s, "/b", 40, hours(30));
    eventually("the /a decline fires", || {
        (state_of(&s, "usersa", "") == "firing").then_some(())
    });
    let a = series(&s, "usersa", "").unwrap();
    assert_eq!(a["value"], 40.0);
    assert_eq!(a["reference"], 100.0);
    let b = series(&s, "usersb", "").unwrap();
    assert_eq!(b["state"], "inactive", "{b}");
    assert_eq!(b["value"], 40.0);
    assert_eq!(b["reference"], 40.0);
}

#[test]
fn rules_api_validates_and_keeps_defaults_safe() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("growth-stack.toml"),
        "[[alerts.rules]]\nname = \"SlowLCP\"\nmeasure = \"lcp\"\ngroup_by = \"route\"\nthreshold = 3000\n\n\
         [[alerts.rules]]\nid = \"checkout_errors\"\nname = \"CheckoutErrors\"\nmeasure = \"js_errors\"\nfilters = { route = \"/checkout\" }\nthreshold = 10\nwindow = \"5m\"\n",
    )
    .unwrap();
    let s = start(dir.path(), &[]);
    let all = s.get_json("/api/alerts");
    let rules = all["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 17, "16 defaults, one replaced, one added");
    let lcp = rules.iter().find(|r| r["id"] == "perf_lcp").unwrap();
    assert_eq!(lcp["threshold"], 3000.0);
    assert_eq!(lcp["origin"], "config");
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "perf_fid",
        "perf_cls",
        "perf_error_rate",
        "ai_latency",
        "ai_error_rate",
        "ai_cache_hit_rate",
        "ai_tokens",
        "db_query_time",
        "db_slow_rate",
        "db_cache_hit_rate",
        "growth_dau_decline",
        "growth_conversion_decline",
        "growth_error_rate",
        "checkout_errors",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    // Config rules are read-only here.
    let r = send(
        &s,
        "PUT",
        "/api/alerts/rules/perf_lcp",
        &json!({"name": "SlowLCP", "measure": "lcp", "threshold": 1}),
    );
    assert_eq!(r.status(), 403);
    // A default can be changed and put back, not deleted.
    let r = send(
        &s,
        "PUT",
        "/api/alerts/rules/ai_tokens",
        &json!({"name": "HighAITokenUsage", "measure": "ai_tokens", "threshold": 8000, "enabled": false}),
    );
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let changed: Value = r.json().unwrap();
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["edited"], true);
    let r = client()
        .delete(format!("{}/api/alerts/rules/perf_fid", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        409,
        "a built-in rule as shipped is turned off, not deleted"
    );
    let r = client()
        .delete(format!("{}/api/alerts/rules/ai_tokens", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let back = s.get_json("/api/alerts/rules/ai_tokens");
    assert_eq!(back["threshold"], 3000.0);
    assert_eq!(back["enabled"], true);

    // A user rule: every field checked, the error names it.
    for (body, field) in [
        (json!({"name": "X", "measure": "cpu"}), "measure"),
        (
            json!({"name": "X", "measure": "lcp", "aggregation": "rate"}),
            "aggregation",
        ),
        (
            json!({"name": "X", "measure": "lcp", "filters": {"model": "gpt-4o"}}),
            "filters",
        ),
        (
            json!({"name": "X", "measure": "ai_latency", "window": "8d"}),
            "window",
        ),
        (
            json!({"name": "X", "measure": "ai_latency", "summary": null}),
            "summary",
        ),
        (
            json!({"name": "X", "measure": "ai_latency", "window": "soon"}),
            "window",
        ),
        (
            json!({"name": "X", "measure": "ai_latency", "sql": "SELECT 1"}),
            "sql",
        ),
        (json!({"name": "", "measure": "ai_latency"}), "name"),
    ] {
        let r = send(&s, "POST", "/api/alerts/rules", &body);
        let e = error_of(r, 422);
        assert!(
            e["message"].as_str().unwrap().contains(field),
            "{field}: {e}"
        );
    }
    let r = send(
        &s,
        "POST",
        "/api/alerts/rules",
        &json!({"name": "Slow GPT", "measure": "ai_latency", "filters": {"model": "gpt-4o"}, "aggregation": "p95", "threshold": 8000, "window": "10m", "for": "2m", "keep_firing_for": "5m", "severity": "critical", "labels": {"team": "ml"}}),
    );
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let rule: Value = r.json().unwrap();
    assert_eq!(rule["id"], "slow_gpt");
    assert_eq!(rule["window"], 600);
    assert_eq!(rule["for"], 120);
    let r = send(
        &s,
        "POST",
        "/api/alerts/rules",
        &json!({"name": "Slow GPT", "measure": "ai_latency"}),
    );
    assert_eq!(r.status(), 409, "ids are unique");
    let p = send(
        &s,
        "POST",
        "/api/alerts/preview",
        &json!({"name": "P", "measure": "lcp", "threshold": 4000}),
    );
    assert_eq!(p.status(), 200);
    let p: Value = p.json().unwrap();
    assert!(p["points"].is_array());
    assert_eq!(
        s.get_json("/api/alerts/rules/slow_gpt/preview")["threshold"],
        8000.0
    );
    let m = s.get_json("/api/alerts/measures");
    assert!(m["measures"].as_array().unwrap().len() >= 20);
    // Reads need the token.
    let r = client()
        .get(format!("{}/api/alerts", s.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // And the rule survives a restart.
    drop(s);
    let s = start(dir.path(), &[]);
    assert_eq!(
        s.get_json("/api/alerts/rules/slow_gpt")["threshold"],
        8000.0
    );
}

#[test]
fn errors_stream_counts_js_and_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("GROWTH_GATEWAY_KEYS", "gw-test-key-0123456789".to_string()),
            // Nothing listens there: the gateway answers 502, a server error.
            (
                "OPENAI_BASE_URL",
                format!("http://127.0.0.1:{}/v1", free_port()),
            ),
            ("OPENAI_API_KEY", "sk-test".to_string()),
            ("GROWTH_AI_MAX_RETRIES", "0".to_string()),
        ],
    );
    users(&s, "/shop", 10, chrono::Duration::minutes(1));
    let errs = json!([
        {"message": "TypeError: x is undefined", "source": "https://shop.example/app.js?v=3", "line": 12, "col": 5, "route": "/shop", "sessionId": "s1"},
        {"message": "TypeError: x is undefined", "filename": "https://shop.example/app.js", "lineno": 12, "route": "/shop", "sessionId": "s2"},
        {"message": "Unhandled rejection: boom", "route": "/shop", "sessionId": "s2"},
    ]);
    let r = s.post_json("/api/analytics/errors", &errs);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let bad = s.post_json(
        "/api/analytics/errors",
        &json!([{"message": "ok"}, {"message": ""}]),
    );
    assert!(error_of(bad, 422)["message"]
        .as_str()
        .unwrap()
        .contains("message"));
    let top = server_error_recorded(&s);
    assert_eq!(top["js_errors"], 3);
    assert_eq!(top["page_views"], 10);
    assert_eq!(top["error_rate"], 30.0);
    let first = &top["top"][0];
    assert_eq!(first["message"], "TypeError: x is undefined");
    assert_eq!(first["count"], 2, "one error, two occurrences: {top}");
    assert_eq!(first["sessions"], 2);
    assert_eq!(first["source"], "https://shop.example/app.js");
    let server = row_where(&top["top"], "kind", "server");
    assert!(
        server["message"]
            .as_str()
            .unwrap()
            .contains("/v1/chat/completions"),
        "{server}"
    );
}
