//! Scaling and backup on the ClickHouse engine: app samples posted through one node are
//! read through the other, with every node's host; the scaling reads give the same JSON as
//! a DuckDB node on one fixture; two nodes record one recommendation a period between
//! them; a backup freezes the tables on every server, and the frozen parts attach back.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clickhouse::{iso, node_with};
use crate::clickhouse_servers::ChCluster;
use crate::helpers::{client, Server, TOKEN};

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn read(s: &Server, path: &str) -> Value {
    let r = s.get(path);
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn report(s: &Server, samples: &[Value]) {
    let r = s.post_json("/api/analytics/system", &Value::Array(samples.to_vec()));
    assert_eq!(r.status(), 200, "{:?}", r.text());
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// No host sampler: only the fixture's samples count.
const QUIET: (&str, &str) = ("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "0");

#[test]
fn samples_posted_through_one_node_are_read_through_the_other() {
    let ch = ChCluster::start(2);
    let fast = [("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "1")];
    let (a, _da) = node_with(&ch, &[0, 1], &fast);
    let (b, _db) = node_with(&ch, &[1, 0], &fast);
    let now = now_ms();
    let samples: Vec<Value> = (0..4)
        .map(|i| json!({ "instance": format!("web-{i}"), "cpu": 90.0, "memory": 50.0, "timestamp": now - 1000 }))
        .collect();
    report(&a, &samples);

    let rec = read(&b, "/api/scaling/recommendation");
    assert_eq!(rec["fleet"], "apps", "{rec}");
    assert_eq!(rec["current_instances"], 4, "{rec}");
    assert_eq!(
        rec["desired_instances"], 6,
        "4 x 90 / 70, rounded up: {rec}"
    );

    // Each node samples its own host under its own name: both show on either node.
    let hosts = wait_for(20, "both nodes' host samples", || {
        let sys = read(&a, "/api/analytics/system?range=1h");
        let hosts: Vec<String> = sys["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["source"] == "host")
            .map(|i| i["instance"].as_str().unwrap().to_string())
            .collect();
        (hosts.len() == 2).then_some(hosts)
    });
    for s in [&a, &b] {
        let port = s.url.rsplit(':').next().unwrap();
        assert!(
            hosts.iter().any(|h| h.ends_with(&format!(":{port}"))),
            "{hosts:?} names the node on {port}"
        );
    }
    let sys = read(&b, "/api/analytics/system?range=1h");
    let apps: Vec<&str> = sys["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["source"] == "app")
        .filter_map(|i| i["instance"].as_str())
        .collect();
    assert_eq!(apps, ["web-0", "web-1", "web-2", "web-3"]);
    // The forecast's capacity is the answering node's own host.
    let f = read(&b, "/api/scaling/forecast");
    assert!(f["capacity"]["samples"].as_u64().unwrap() >= 1, "{f}");
    assert!(f["capacity"]["memory_limit"].as_i64().unwrap() > 0, "{f}");
}

/// Three app instances reporting once an hour over 60 hours, plus a fresh sample each:
/// CPU constant within a day and memory per instance, in halves, so every sum and mean is
/// exact whatever order an engine adds in; a heartbeat without metrics; a few with
/// connections and an error rate.
fn fleet_fixture() -> Vec<Value> {
    let now = now_ms();
    let start = now - now.rem_euclid(HOUR_MS) - 60 * HOUR_MS + 10 * 60_000;
    let mut out = Vec::new();
    for h in 0..60i64 {
        let at = start + h * HOUR_MS;
        let day = at.div_euclid(24 * HOUR_MS);
        for i in 0..3i64 {
            let mut s = json!({
                "instance": format!("web-{i}"),
                "cpu": 20.0 + 10.0 * i as f64 + 5.0 * day.rem_euclid(3) as f64,
                "memory": 40.0 + 2.5 * i as f64,
                "requestsPerSecond": 10.5 + i as f64,
                "p95Latency": 100.0 + 25.0 * i as f64,
                "timestamp": at + i * 1000,
            });
            if (h + i) % 7 == 0 {
                s["connections"] = json!(3 + i);
                s["errorRate"] = json!(0.25);
            }
            if i == 2 && h == 30 {
                s = json!({ "instance": "web-2", "timestamp": at + 2000 });
            }
            out.push(s);
        }
    }
    for i in 0..3i64 {
        out.push(
            json!({ "instance": format!("web-{i}"), "cpu": 60.0 + 5.0 * i as f64,
            "memory": 50.0, "timestamp": now - 5000 + i }),
        );
    }
    out
}

/// Where `a` and `b` differ, as JSON paths with both values.
fn diff(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                diff(
                    &x[k],
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{at}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(p, q, &format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{at}: {a} != {b}")),
        _ => {}
    }
}

fn assert_same(a: &Value, b: &Value, what: &str) {
    let mut out = Vec::new();
    diff(a, b, "", &mut out);
    out.truncate(20);
    assert!(out.is_empty(), "{what}:\n{}", out.join("\n"));
}

/// A samples report without the times the rows were received (each node's own clock).
fn received_at_dropped(mut report: Value) -> Value {
    for r in report["rows"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("created_at");
    }
    report
}

/// A recommendation without what depends on the moment it was asked.
fn settled(mut rec: Value) -> Value {
    let r = rec.as_object_mut().unwrap();
    r.remove("computed_at");
    for i in r["instances"].as_array_mut().unwrap() {
        i.as_object_mut().unwrap().remove("age_seconds");
    }
    rec
}

#[test]
fn scaling_reads_are_the_same_on_duckdb_and_clickhouse() {
    let ch = ChCluster::start(2);
    let (c1, _d1) = node_with(&ch, &[0, 1], &[QUIET]);
    let (c2, _d2) = node_with(&ch, &[1, 0], &[QUIET]);
    let dir = tempfile::tempdir().unwrap();
    let d = Server::start_in(dir.path(), &[], &[QUIET]);
    let items = fleet_fixture();
    report(&d, &items);
    // Half through each ClickHouse node.
    for (k, s) in [&c1, &c2].into_iter().enumerate() {
        let half: Vec<Value> = items.iter().skip(k).step_by(2).cloned().collect();
        report(s, &half);
    }
    let now = now_ms();
    let hour = now - now.rem_euclid(HOUR_MS);
    for (from, to) in [
        (hour - 30 * HOUR_MS, hour - 6 * HOUR_MS),
        (hour - 72 * HOUR_MS, hour + HOUR_MS),
        (hour - HOUR_MS, hour + HOUR_MS),
    ] {
        let path = format!(
            "/api/analytics/system?from={}&to={}&limit=40&offset=3",
            iso(from),
            iso(to)
        );
        let on_d = received_at_dropped(read(&d, &path));
        assert!(on_d["page"]["total"].as_u64().unwrap() > 0, "{on_d}");
        assert_same(&received_at_dropped(read(&c1, &path)), &on_d, &path);
    }
    // The forecast's hours end at the current one: asked again if an hour turned between.
    let forecast = || {
        (
            read(&d, "/api/scaling/forecast?hours=12"),
            read(&c2, "/api/scaling/forecast?hours=12"),
        )
    };
    let (mut on_d, mut on_c) = forecast();
    if on_d["actual"] != on_c["actual"] {
        (on_d, on_c) = forecast();
    }
    assert_eq!(on_d["state"], "ok", "{on_d}");
    assert_same(&on_c, &on_d, "forecast");
    let on_d = settled(read(&d, "/api/scaling/recommendation"));
    assert_eq!(on_d["current_instances"], 3, "{on_d}");
    assert_same(
        &settled(read(&c1, "/api/scaling/recommendation")),
        &on_d,
        "recommendation",
    );
    assert_eq!(
        read(&c2, "/api/scaling/manifests?name=web"),
        read(&d, "/api/scaling/manifests?name=web")
    );
}

fn count(ch: &ChCluster, sql: &str) -> u64 {
    ch.count(0, sql)
}

#[test]
fn two_nodes_record_one_recommendation_a_period() {
    let ch = ChCluster::start(2);
    let every = [
        ("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "3"),
        ("GROWTH_SCALABILITY_STALE_AFTER", "600"),
    ];
    let (a, b) = std::thread::scope(|t| {
        let a = t.spawn(|| node_with(&ch, &[0, 1], &every));
        let b = t.spawn(|| node_with(&ch, &[1, 0], &every));
        (a.join().unwrap(), b.join().unwrap())
    });
    let now = now_ms();
    let fleet: Vec<Value> = (0..3)
        .map(|i| json!({ "instance": format!("web-{i}"), "cpu": 85.0, "timestamp": now }))
        .collect();
    report(&a.0, &fleet);
    let claims = "SELECT count() FROM growth.job_leases WHERE job LIKE 'scaling:%'";
    let periods = "SELECT uniqExact(job) FROM growth.job_leases WHERE job LIKE 'scaling:%'";
    let recs = "SELECT count() FROM growth.scaling_recommendations";
    wait_for(40, "five periods", || {
        (count(&ch, periods) >= 5).then_some(())
    });
    let till = now_ms() - 1000;
    // Stop both, so no claim is half-way when counting.
    let (sa, sb) = (a.0, b.0);
    let history = format!(
        "/api/scaling/history?from={}&to={}",
        iso(now - 60_000),
        iso(till)
    );
    assert_eq!(read(&sa, &history), read(&sb, &history));
    assert!(sa.terminate().success());
    assert!(sb.terminate().success());
    let (claims, periods, recs) = (count(&ch, claims), count(&ch, periods), count(&ch, recs));
    assert!(
        recs <= periods,
        "{recs} recommendations in {periods} periods"
    );
    assert!(
        recs + 1 >= periods,
        "{recs} recommendations in {periods} periods"
    );
    assert!(
        claims > periods,
        "both nodes claimed: {claims} claims, {periods} periods"
    );
    assert_eq!(
        count(
            &ch,
            "SELECT max(n) FROM (SELECT job, uniqExact(holder) AS n FROM growth.job_leases \
             WHERE job LIKE 'scaling:%' GROUP BY job)"
        ),
        2
    );
    assert_eq!(
        count(
            &ch,
            "SELECT countIf(desired_instances = 4 AND current_instances = 3) FROM growth.scaling_recommendations"
        ),
        recs,
        "3 x 85 / 70, rounded up"
    );
}

/// Copies `from`'s entries into `to` as hard links, owned by the server's user.
fn link_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    let status = std::process::Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn backup_freezes_every_server_and_the_parts_attach_back() {
    let ch = ChCluster::start(2);
    let (a, _da) = node_with(&ch, &[0, 1], &[QUIET]);
    let (b, _db) = node_with(&ch, &[1, 0], &[QUIET]);
    let now = now_ms();
    let events: Vec<Value> = (0..40)
        .map(
            |i| json!({ "event": "visit", "userId": format!("p{i}"), "timestamp": now - i * 1000 }),
        )
        .collect();
    assert_eq!(
        a.post_json("/api/analytics/events", &Value::Array(events))
            .status(),
        200
    );
    let samples: Vec<Value> = (0..8)
        .map(|i| json!({ "instance": format!("web-{i}"), "cpu": 10.0, "timestamp": now }))
        .collect();
    report(&b, &samples);
    let local =
        |i: usize, table: &str| ch.count(i, &format!("SELECT count() FROM growth.{table}_local"));
    for i in 0..2 {
        assert!(local(i, "user_events") > 0, "server {i} holds events");
    }

    let r = client()
        .post(format!("{}/api/admin/backup", a.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    assert_eq!(status, 200, "{body}");
    let frozen = &body["clickhouse"];
    assert_eq!(frozen["complete"], true, "{body}");
    // The folder is the backup's name with `_` for what ClickHouse would escape.
    let name = frozen["name"].as_str().unwrap().to_string();
    assert_eq!(
        name,
        body["name"].as_str().unwrap().replace(['.', '-'], "_")
    );
    let servers = frozen["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{body}");
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(server["server"], ch.url(i).as_str());
        let shadow = ch.data_dir(i).join("shadow").join(&name);
        assert_eq!(
            server["shadow"].as_str().map(Path::new),
            Some(shadow.as_path()),
            "{server}"
        );
        let tables = server["tables"].as_array().unwrap();
        let events = tables
            .iter()
            .find(|t| t["table"] == "user_events_local")
            .unwrap_or_else(|| panic!("{server}"));
        assert_eq!(events["rows"].as_u64(), Some(local(i, "user_events")));
        assert!(tables.iter().any(|t| t["table"] == "schema_migrations"));
        // The hard links are on the server's disk, one folder per part (a merge may
        // have joined some between the count and the freeze, not of one insert's table).
        for t in tables {
            let dir = shadow
                .join("data/growth")
                .join(t["table"].as_str().unwrap());
            let parts = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .count() as u64;
            assert!(parts >= 1, "{}", dir.display());
            if t["table"] == "user_events_local" {
                assert_eq!(Some(parts), t["parts"].as_u64(), "{}", dir.display());
            }
        }
    }
    let samples_frozen: u64 = servers
        .iter()
        .flat_map(|s| s["tables"].as_array().unwrap())
        .filter(|t| t["table"] == "system_metrics_local")
        .map(|t| t["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(samples_frozen, 8);
    // This node's own file is backed up as on DuckDB, and the list says what was frozen.
    let listed = read(&a, "/api/admin/backups");
    assert_eq!(listed[0]["name"], body["name"], "{listed}");
    assert_eq!(listed[0]["clickhouse"], *frozen);
    assert!(Path::new(body["path"].as_str().unwrap())
        .join("manifest.json")
        .exists());

    // Restore as README says: the frozen parts into detached/, then ATTACH PARTITION.
    let before = local(0, "user_events");
    let table_dir = ch.data_dir(0).join("data/growth/user_events_local");
    let frozen_dir = ch
        .data_dir(0)
        .join("shadow")
        .join(&name)
        .join("data/growth/user_events_local");
    let mut partitions = Vec::new();
    for part in std::fs::read_dir(&frozen_dir).unwrap() {
        let part = part.unwrap().file_name().into_string().unwrap();
        let p = part.split('_').next().unwrap().to_string();
        if !partitions.contains(&p) {
            partitions.push(p);
        }
        link_tree(
            &frozen_dir.join(&part),
            &table_dir.join("detached").join(&part),
        );
    }
    for p in &partitions {
        ch.query(
            0,
            &format!("ALTER TABLE growth.user_events_local DROP PARTITION {p}"),
        )
        .unwrap();
    }
    assert_eq!(local(0, "user_events"), 0);
    for p in &partitions {
        ch.query(
            0,
            &format!("ALTER TABLE growth.user_events_local ATTACH PARTITION {p}"),
        )
        .unwrap();
    }
    assert_eq!(local(0, "user_events"), before);
}
