//! The ClickHouse engine end to end: two clickhouse-server processes as two shards of one
//! cluster, growth-stack nodes on them, writes through either node landing on both shards,
//! reads through either node seeing all, 503 (never a lost ack) while a shard is down, and
//! parity: the same fixture through a DuckDB node and a ClickHouse node gives the same
//! answers on every ported read endpoint.

use serde_json::{json, Value};

use crate::clickhouse_servers::{ChCluster, CLUSTER};
use crate::helpers::{client, funnel_step_users, Server, TOKEN};

const DAY_MS: i64 = 86_400_000;

/// A growth-stack node on the cluster, talking to the servers in `order` (fail-over list).
pub(crate) fn node(ch: &ChCluster, order: &[usize]) -> (Server, tempfile::TempDir) {
    node_with(ch, order, &[])
}

pub(crate) fn node_with(
    ch: &ChCluster,
    order: &[usize],
    more: &[(&str, &str)],
) -> (Server, tempfile::TempDir) {
    let urls: Vec<String> = order.iter().map(|i| ch.url(*i)).collect();
    let urls = urls.join(",");
    let mut env: Vec<(&str, &str)> = vec![
        ("GROWTH_STORAGE_ENGINE", "clickhouse"),
        ("GROWTH_CLICKHOUSE_URL", &urls),
        ("GROWTH_CLICKHOUSE_CLUSTER", CLUSTER),
    ];
    env.extend_from_slice(more);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[], &env);
    (s, dir)
}

pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Start of today (UTC) minus `days`, in ms.
pub(crate) fn day_start(days: i64) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    now - now.rem_euclid(DAY_MS) - days * DAY_MS
}

/// Five people sign up, two of them activate, one of those purchases: the funnel is
/// (5, 2, 1) with 60 s medians. `half` picks which half of the items (by index parity).
fn funnel_fixture(half: usize) -> Value {
    let base = day_start(1) + 3_600_000;
    let mut items = Vec::new();
    let mut push = |user: &str, event: &str, at: i64| {
        items.push(json!({ "event": event, "userId": user, "timestamp": at, "createdAt": iso(at) }))
    };
    for i in 0..5 {
        push(&format!("p{i}"), "signup", base + i * 1000);
    }
    for i in 0..2 {
        push(&format!("p{i}"), "activate", base + 60_000 + i * 1000);
    }
    push("p0", "purchase", base + 120_000);
    Value::Array(
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == half)
            .map(|(_, v)| v)
            .collect(),
    )
}

fn funnel_users(s: &Server) -> Vec<u64> {
    let body = json!({ "steps": ["signup", "activate", "purchase"], "range": "7d" });
    funnel_step_users(s, &body)
}

#[test]
fn two_nodes_on_two_shards_write_everywhere_and_read_everything() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let (b, _db) = node_with(&ch, &[1, 0], &[("GROWTH_CLICKHOUSE_GZIP", "true")]);
    assert_eq!(
        a.post_json("/api/analytics/events", &funnel_fixture(0))
            .status(),
        200
    );
    assert_eq!(
        b.post_json("/api/analytics/events", &funnel_fixture(1))
            .status(),
        200
    );
    // Both shards hold rows (sharded by visitor), and together all of them.
    let on = |i| ch.count(i, "SELECT count() FROM growth.user_events_local");
    let (s0, s1) = (on(0), on(1));
    assert!(s0 > 0 && s1 > 0, "rows on both shards: {s0} + {s1}");
    assert_eq!(s0 + s1, 8);
    // Nobody is split over two shards: per-person queries stay shard-local.
    let people = |i| {
        ch.count(
            i,
            "SELECT uniqExact(visitor_id) FROM growth.user_events_local",
        )
    };
    assert_eq!(people(0) + people(1), 5);
    // The storage page counts the cluster's rows and parts, the same from either node.
    let storage = |s: &Server| {
        let v: Value = client()
            .get(format!("{}/api/admin/storage", s.url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stream"] == "events")
            .cloned()
            .unwrap()
    };
    let events = storage(&a);
    assert_eq!(events["rows"], 8, "{events}");
    assert!(events["bytes"].as_u64().unwrap() > 0, "{events}");
    assert!(events["oldest"].is_string(), "{events}");
    assert_eq!(events, storage(&b));
    for s in [&a, &b] {
        assert_eq!(funnel_users(s), [5, 2, 1], "through {}", s.url);
        let e = s.get_json("/api/analytics/events?range=7d");
        assert_eq!(e["totals"]["events"], 8);
        assert_eq!(e["totals"]["users"], 5);
    }
    // The same answers from both nodes (over one fixed window: `now` moves).
    let (from, to) = (iso(day_start(7)), iso(day_start(-1)));
    for path in [
        format!("/api/analytics/features?from={from}&to={to}"),
        format!("/api/analytics/growth?from={from}&to={to}"),
        format!("/api/analytics/retention?interval=day&periods=3&start_event=signup&to={to}"),
    ] {
        assert_eq!(a.get_json(&path), b.get_json(&path), "{path}");
    }
    // A person's events went through both nodes to both shards: each node sees them all.
    let p0 = a.get_json("/api/analytics/users/p0");
    assert_eq!(p0["profile"]["total_events"], 3, "{p0}");
    assert_eq!(p0, b.get_json("/api/analytics/users/p0"));
    // Index advice (no database.url: the candidates) is the same through either node.
    let advice = format!("/api/analytics/database-performance/index-advice?from={from}&to={to}");
    assert_eq!(a.get_json(&advice), b.get_json(&advice));
    // The schema is versioned on every server, whichever node created it.
    let newest = growth_stack::store::clickhouse::MIGRATIONS
        .last()
        .map_or(0, |m| u64::from(m.version));
    for i in 0..2 {
        assert_eq!(
            ch.count(i, "SELECT max(version) FROM growth.schema_migrations"),
            newest
        );
    }
}

#[test]
fn a_stopped_shard_gives_503_and_loses_no_acknowledged_event() {
    let mut ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let batch = |tag: &str| {
        let at = day_start(0) + 1000;
        Value::Array(
            (0..20)
                .map(|i| json!({ "event": tag, "userId": format!("v{i}"), "timestamp": at + i, "createdAt": iso(at + i) }))
                .collect(),
        )
    };
    let mut acked = Vec::new();
    let mut refused = 0;
    for round in 0..6 {
        if round == 2 {
            ch.stop(1);
        }
        if round == 4 {
            ch.restart(1);
        }
        let tag = format!("round{round}");
        let r = a.post_json("/api/analytics/events", &batch(&tag));
        match r.status().as_u16() {
            200 => acked.push(tag),
            503 => {
                assert!(
                    r.headers().get("retry-after").is_some(),
                    "503 without Retry-After"
                );
                let e: Value = r.json().unwrap();
                assert_eq!(e["error"]["code"], "storage_unavailable");
                refused += 1;
            }
            other => panic!("round {round}: unexpected status {other}"),
        }
    }
    assert_eq!(refused, 2, "both rounds with a shard down were refused");
    assert_eq!(acked.len(), 4, "writes resume once the shard is back");
    // Every acknowledged event is stored, on whichever shard its person lives.
    for tag in &acked {
        let n: u64 = (0..2)
            .map(|i| {
                ch.count(
                    i,
                    &format!("SELECT uniqExact(visitor_id) FROM growth.user_events_local WHERE event = '{tag}'"),
                )
            })
            .sum();
        assert_eq!(n, 20, "{tag}");
    }
    // Reads while a shard is down are refused the same way, not answered in part.
    ch.stop(0);
    let r = a.get("/api/analytics/events?range=1d");
    assert_eq!(r.status(), 503);
}

/// A fixture with some of everything the growth reads look at: people over ten days,
/// sessions, page views with routes and campaigns, features, a funnel, conversions.
/// `v` without its `estimated` lists, at any depth.
pub(crate) fn without_estimated(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            m.remove("estimated");
            for x in m.values_mut() {
                *x = without_estimated(x.take());
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_estimated(x.take());
            }
        }
        _ => {}
    }
    v
}

fn parity_fixture() -> (Vec<Value>, Vec<Value>) {
    let base = day_start(10);
    let mut events = Vec::new();
    let mut n = 0u32;
    let mut ev = |user: String, event: &str, at: i64, extra: Value| {
        n += 1;
        let mut e = json!({
            "id": format!("00000000-0000-4000-8000-{n:012}"),
            "event": event, "userId": user, "sessionId": format!("s-{}", at / DAY_MS),
            "timestamp": at, "createdAt": iso(at),
        });
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        events.push(e);
    };
    for u in 0..12i64 {
        let user = format!("user{u}");
        ev(user.clone(), "signup", base + u * 3_600_000, json!({}));
        for d in 0..10i64 {
            if (u + d) % 3 == 0 || (u < 3 && d % 2 == 1) {
                let at = base + d * DAY_MS + u * 60_000 + 7_000;
                ev(
                    user.clone(),
                    "pageview",
                    at,
                    json!({ "route": format!("/r{}", (u + d) % 4),
                    "referrer": if u % 2 == 0 { "https://news.example/a" } else { "https://search.example/?q=x" },
                    "properties": { "utm_source": if u % 3 == 0 { "mail" } else { "ads" } } }),
                );
                ev(
                    user.clone(),
                    "open",
                    at + 1000,
                    json!({ "properties": { "feature": format!("f{}", (u * d) % 3) } }),
                );
            }
        }
        if u % 2 == 0 {
            ev(
                user.clone(),
                "activate",
                base + u * 3_600_000 + 600_000,
                json!({}),
            );
        }
        if u % 4 == 0 {
            ev(
                user.clone(),
                "purchase",
                base + u * 3_600_000 + 1_200_000,
                json!({}),
            );
        }
    }
    let mut conversions = Vec::new();
    for (u, steps) in [(0, 3), (1, 2), (2, 1), (3, 2)] {
        for (k, step) in ["cart", "pay", "done"].iter().take(steps).enumerate() {
            let at = base + DAY_MS + u * 60_000 + k as i64 * 30_000;
            let id = format!("00000000-0000-4000-9000-{:012}", conversions.len());
            conversions.push(json!({ "id": id, "funnel": "Checkout", "step": step,
                "userId": format!("user{u}"), "timestamp": at, "createdAt": iso(at) }));
        }
    }
    (events, conversions)
}

#[test]
fn duckdb_and_clickhouse_give_the_same_answers() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    let (events, conversions) = parity_fixture();
    for s in [&d, &c] {
        for chunk in events.chunks(40) {
            let r = s.post_json("/api/analytics/events", &Value::Array(chunk.to_vec()));
            assert_eq!(r.status(), 200);
        }
        let r = s.post_json(
            "/api/analytics/conversions",
            &Value::Array(conversions.clone()),
        );
        assert_eq!(r.status(), 200);
    }
    let (from, to) = (iso(day_start(12)), iso(day_start(-1)));
    let window = format!("from={from}&to={to}");
    let gets = [
        format!("/api/analytics/events?{window}&limit=500"),
        format!("/api/analytics/events?{window}&limit=7&offset=5"),
        format!("/api/analytics/conversions?{window}"),
        format!("/api/analytics/conversions?{window}&limit=3&offset=2"),
        format!("/api/analytics/features?{window}&interval=day"),
        format!("/api/analytics/features?{window}&interval=week&utc_offset=%2B02:00"),
        format!("/api/analytics/growth?{window}"),
        format!("/api/analytics/growth?{window}&utc_offset=-300"),
        format!("/api/analytics/retention?interval=day&periods=12&to={to}"),
        format!("/api/analytics/retention?interval=day&periods=12&to={to}&start_event=signup&return_event=open"),
        format!("/api/analytics/retention?interval=week&periods=3&to={to}&return_event=pageview"),
        format!("/api/analytics/retention?interval=month&periods=2&to={to}&utc_offset=%2B05:30"),
        format!("/api/analytics/funnels/Checkout?{window}"),
        format!("/api/analytics/funnels/Checkout?{window}&steps=cart,done&window=1m"),
    ];
    // The fixture is all there (so equal answers are not two empty ones).
    let e = c.get_json(&gets[0]);
    assert_eq!(e["totals"]["events"], events.len());
    assert_eq!(e["totals"]["conversions"], conversions.len());
    // DuckDB reads long ranges of people from HyperLogLog roll-ups and says so in
    // `estimated`; ClickHouse counts them exactly. At this fixture's size the estimates
    // are exact, so every figure must agree; only the list of estimated ones differs.
    for path in &gets {
        assert_eq!(
            without_estimated(d.get_json(path)),
            without_estimated(c.get_json(path)),
            "GET {path}"
        );
    }
    for body in [
        json!({ "steps": ["signup", "activate", "purchase"], "from": from, "to": to }),
        json!({ "steps": ["signup", "pageview", "open"], "from": from, "to": to, "window": "1d" }),
        json!({ "steps": ["pageview", "pageview", "open"], "from": from, "to": to, "window": 86400 }),
    ] {
        let post = |s: &Server| -> Value {
            let r = client()
                .post(format!("{}/api/analytics/funnels", s.url))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "{body}");
            r.json().unwrap()
        };
        assert_eq!(post(&d), post(&c), "POST funnels {body}");
    }
}

#[test]
fn kill_9_of_a_node_during_ingest_loses_no_acknowledged_event() {
    // One server, no cluster: plain MergeTree tables, no Distributed layer.
    let ch = ChCluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let node = Server::start_in(
        dir.path(),
        &[],
        &[
            ("GROWTH_STORAGE_ENGINE", "clickhouse"),
            ("GROWTH_CLICKHOUSE_URL", &ch.url(0)),
            ("GROWTH_CLICKHOUSE_DATABASE", "solo"),
        ],
    );
    let tables = ch.query(0, "SHOW TABLES FROM solo").unwrap();
    assert!(
        tables.contains("user_events") && !tables.contains("_local"),
        "{tables}"
    );
    let url = node.url.clone();
    let sender = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for round in 0..10_000 {
            let at = day_start(0) + round;
            let body = Value::Array(
                (0..50)
                    .map(|i| json!({ "event": format!("k{round}"), "userId": format!("v{i}"), "timestamp": at, "createdAt": iso(at) }))
                    .collect(),
            );
            match client()
                .post(format!("{url}/api/analytics/events"))
                .json(&body)
                .send()
            {
                Ok(r) if r.status() == 200 => acked.push(round),
                _ => break,
            }
        }
        acked
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    node.kill9();
    let acked = sender.join().unwrap();
    assert!(acked.len() > 5, "only {} batches acknowledged", acked.len());
    let stored: std::collections::HashMap<String, u64> = ch
        .query(
            0,
            "SELECT event, count() FROM solo.user_events GROUP BY event FORMAT TSV",
        )
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (e, n) = l.split_once('\t')?;
            Some((e.to_string(), n.parse().ok()?))
        })
        .collect();
    for round in &acked {
        assert_eq!(stored.get(&format!("k{round}")), Some(&50), "batch {round}");
    }
}

/// `migrate --to-clickhouse`: a DuckDB node's events and conversions over three days land
/// on the two shards; a second run copies nothing; events added to the file afterwards
/// (hours already copied, and new ones) are topped up by id; a ClickHouse node then
/// answers the funnel and the totals the DuckDB node gave.
#[test]
fn migrate_to_clickhouse_copies_once_resumes_and_answers_the_same() {
    let ch = ChCluster::start(2);
    let dir = tempfile::tempdir().unwrap();
    let duck = Server::start_in(dir.path(), &[], &[]);
    let mut older = Vec::new();
    for d in 1..=3 {
        for i in 0..20 {
            let at = day_start(d) + 3_600_000 + i * 60_000;
            older.push(json!({ "event": "recipe_viewed", "userId": format!("u{i}"), "timestamp": at, "createdAt": iso(at) }));
        }
    }
    assert_eq!(
        duck.post_json("/api/analytics/events", &funnel_fixture(0))
            .status(),
        200
    );
    assert_eq!(
        duck.post_json("/api/analytics/events", &funnel_fixture(1))
            .status(),
        200
    );
    assert_eq!(
        duck.post_json("/api/analytics/events", &Value::Array(older))
            .status(),
        200
    );
    let conv = json!([{ "funnel": "checkout", "step": "paid", "userId": "p0" }]);
    assert_eq!(
        duck.post_json("/api/analytics/conversions", &conv).status(),
        200
    );
    let want = duck.get_json("/api/analytics/events?range=7d")["totals"].clone();
    assert_eq!(want["events"], 68);
    // Web vitals, AI calls, query timings and errors move too (their reads run on
    // ClickHouse).
    let at = day_start(2) + 7_200_000;
    let metrics = [
        (
            "performance",
            json!([{ "route": "/a", "lcp": 2100.5, "cls": 0.12, "timestamp": at },
                   { "route": "/b", "lcp": 3900, "inp": 240, "timestamp": at + 60_000 }]),
        ),
        (
            "ai-performance",
            json!([{ "model": "m", "duration": 420, "tokens": 12, "timestamp": at },
                   { "model": "m", "duration": 900, "cache_hit": true, "timestamp": at + 1000 },
                   { "model": "n", "duration": 77, "success": false, "timestamp": at + 2000 }]),
        ),
        (
            "database-performance",
            json!([{ "query": "SELECT * FROM r WHERE id = 1", "duration": 12, "timestamp": at },
                   { "query": "SELECT * FROM r WHERE id = 2", "duration": 1800, "timestamp": at + 500 }]),
        ),
        (
            "errors",
            json!([{ "message": "boom", "route": "/a", "sessionId": "s1", "createdAt": iso(at) },
                   { "message": "boom", "route": "/a", "sessionId": "s2", "stack": "at x", "createdAt": iso(at + 60_000) }]),
        ),
    ];
    let window = format!("from={}&to={}", iso(day_start(3)), iso(day_start(-1)));
    let mut want_reads = Vec::new();
    for (stream, items) in &metrics {
        let path = format!("/api/analytics/{stream}");
        assert_eq!(duck.post_json(&path, items).status(), 200, "{path}");
        let read = format!("{path}?{window}");
        want_reads.push((read.clone(), duck.get_json(&read)));
    }
    // Load samples move too (the scaling reads run on ClickHouse).
    let samples = json!([{ "instance": "web-1", "cpu": 41.5, "timestamp": at },
                         { "instance": "web-2", "memory": 12.25, "timestamp": at + 1000 }]);
    assert_eq!(
        duck.post_json("/api/analytics/system", &samples).status(),
        200
    );
    assert!(duck.terminate().success());

    // Every server of the cluster, as `clickhouse.url` lists them: without ZooKeeper the
    // tables are created on each.
    let urls = format!("{},{}", ch.url(0), ch.url(1));
    let migrate = || {
        let out = crate::helpers::succeeded(
            crate::helpers::bin()
                .args(["migrate", "--to-clickhouse", &urls])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("GROWTH_CLICKHOUSE_CLUSTER", CLUSTER)
                .output()
                .unwrap(),
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = migrate();
    assert!(first.contains("68 copied now"), "{first}");
    assert!(first.contains("1 copied now"), "{first}");
    assert_eq!(
        ch.count(
            0,
            "SELECT countIf(source = 'app' AND (cpu = 41.5 OR memory = 12.25)) FROM growth.system_metrics"
        ),
        2,
        "{first}"
    );
    let on = |i| ch.count(i, "SELECT count() FROM growth.user_events_local");
    let (s0, s1) = (on(0), on(1));
    assert!(
        s0 > 0 && s1 > 0 && s0 + s1 == 68,
        "both shards: {s0} + {s1}"
    );
    let again = migrate();
    assert!(
        again.contains("0 copied now") && again.contains("68 already"),
        "{again}"
    );

    // More events in the file, in an hour already copied and in a new one.
    let duck = Server::start_in(dir.path(), &[], &[]);
    let at = day_start(1) + 3_600_000 + 30_000;
    let late = json!([
        { "event": "recipe_viewed", "userId": "late", "timestamp": at, "createdAt": iso(at) },
        { "event": "recipe_viewed", "userId": "late", "timestamp": at + 7_200_000, "createdAt": iso(at + 7_200_000) }
    ]);
    assert_eq!(duck.post_json("/api/analytics/events", &late).status(), 200);
    let want = duck.get_json("/api/analytics/events?range=7d")["totals"].clone();
    assert!(duck.terminate().success());
    let third = migrate();
    assert!(
        third.contains("2 copied now") && third.contains("68 already"),
        "{third}"
    );
    assert_eq!(on(0) + on(1), 70);

    let (node, _d) = node(&ch, &[1, 0]);
    assert_eq!(funnel_users(&node), [5, 2, 1]);
    let got = node.get_json("/api/analytics/events?range=7d")["totals"].clone();
    assert_eq!(got["events"], want["events"]);
    assert_eq!(got["users"], want["users"]);
    for (read, want) in &want_reads {
        assert_eq!(&node.get_json(read), want, "{read}");
    }
}

#[test]
fn the_overview_is_the_same_on_both_engines() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    let (events, conversions) = parity_fixture();
    let base = day_start(0) - 6 * 3_600_000;
    let vitals: Vec<Value> = (0..24i64)
        .map(|k| {
            json!({ "route": format!("/r{}", k % 3), "lcp": 1200 + k * 173, "cls": 0.01 * (k % 7) as f64,
                "inp": 80 + k * 11, "ttfb": 300 + k * 7, "timestamp": base + k * 60_000 })
        })
        .collect();
    let ai: Vec<Value> = (0..30i64)
        .map(|k| {
            json!({ "model": if k % 3 == 0 { "m-large" } else { "m-small" }, "duration": 100 + k * 37,
                "cache_hit": k % 4 == 0, "success": k % 9 != 0, "tokens": 10 + k, "timestamp": base + k * 45_000 })
        })
        .collect();
    let db: Vec<Value> = (0..40i64)
        .map(|k| {
            json!({ "query": format!("SELECT * FROM t{} WHERE id = {k}", k % 4), "duration": 20 + k * 61,
                "timestamp": base + k * 30_000 })
        })
        .collect();
    for s in [&d, &c] {
        for chunk in events.chunks(40) {
            let r = s.post_json("/api/analytics/events", &Value::Array(chunk.to_vec()));
            assert_eq!(r.status(), 200);
        }
        for (path, items) in [
            ("/api/analytics/conversions", &conversions),
            ("/api/analytics/performance", &vitals),
            ("/api/analytics/ai-performance", &ai),
            ("/api/analytics/database-performance", &db),
        ] {
            let r = s.post_json(path, &Value::Array(items.clone()));
            assert_eq!(r.status(), 200, "{path}");
        }
    }
    // Two days: every engine answers exactly (DuckDB reads its roll-ups only beyond that).
    let (from, to) = (iso(day_start(1)), iso(day_start(-1)));
    let path = format!("/api/overview?from={from}&to={to}");
    let mut on_d = d.get_json(&path);
    let mut on_c = c.get_json(&path);
    assert_eq!(on_c["ai"]["calls"], 30, "{on_c}");
    assert_eq!(on_c["database"]["queries"], 40, "{on_c}");
    assert!(on_c["events"]["total"].as_u64().unwrap() > 0, "{on_c}");
    // The scaling recommendation is about the fleet now: on DuckDB the node's own host, on
    // ClickHouse every node's (README).
    for o in [&mut on_d, &mut on_c] {
        o.as_object_mut().unwrap().remove("scaling");
    }
    assert_eq!(on_d, on_c);
    // Thirteen days: DuckDB answers from roll-ups and names its estimates; the counts agree.
    let (from, to) = (iso(day_start(12)), iso(day_start(-1)));
    let path = format!("/api/overview?from={from}&to={to}");
    let (on_d, on_c) = (d.get_json(&path), c.get_json(&path));
    for (part, key) in [
        ("events", "total"),
        ("events", "conversions"),
        ("ai", "calls"),
        ("database", "queries"),
    ] {
        assert_eq!(on_d[part][key], on_c[part][key], "{part}.{key}");
    }
    assert_eq!(on_c["estimated"], json!([]), "ClickHouse counts exactly");
}
