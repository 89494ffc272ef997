//! Scaling through HTTP: app samples in, the HPA examples out, the stabilisation window,
//! stale instances, the seasonal forecast, manifests, and `/metrics` read by a real
//! Prometheus parser.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{client, error_of, row_where, Server, TOKEN};

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A server whose host sampler is off unless `env` turns it on, so only the test's own
/// samples count.
fn server(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "0")];
    all.extend_from_slice(env);
    let s = Server::start_in(dir.path(), &[], &all);
    (dir, s)
}

fn report(s: &Server, samples: Value) {
    let r = s.post_json("/api/analytics/system", &samples);
    assert_eq!(r.status(), 200, "{:?}", r.text());
}

fn fleet(n: usize, cpu: f64) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({ "instance": format!("web-{i}"), "cpu": cpu }))
            .collect(),
    )
}

fn recommendation(s: &Server) -> Value {
    s.get_json("/api/scaling/recommendation")
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
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_hpa_examples() {
    for (n, cpu, want, clamp) in [
        (3, 90.0, 4, false),
        (3, 73.0, 3, false),
        (10, 95.0, 10, true),
    ] {
        let (_dir, s) = server(&[]);
        report(&s, fleet(n, cpu));
        let r = recommendation(&s);
        assert_eq!(r["state"], "ok", "{r}");
        assert_eq!(r["fleet"], "apps");
        assert_eq!(r["current_instances"], n, "{r}");
        assert_eq!(r["desired_instances"], want, "{n} at {cpu}%: {r}");
        let cpu_input = row_where(&r["inputs"], "metric", "cpu");
        assert_eq!(cpu_input["value"], cpu);
        assert_eq!(cpu_input["target"], 70.0);
        let reason = r["reason"].as_str().unwrap();
        assert!(!reason.is_empty());
        if cpu == 73.0 {
            assert_eq!(cpu_input["within_tolerance"], true);
            assert_eq!(r["action"], "hold");
        } else {
            assert_eq!(r["metric"], "cpu");
            assert_eq!(r["urgency"], "urgent", "above scale_up_threshold 80");
        }
        assert_eq!(reason.contains("max_instances"), clamp, "{reason}");
    }
}

#[test]
fn no_samples_is_a_state_not_a_guess() {
    let (_dir, s) = server(&[]);
    let r = recommendation(&s);
    assert_eq!(r["state"], "not_enough_data", "{r}");
    assert_eq!(r["current_instances"], 0);
    assert!(r["desired_instances"].is_null());
    let off = server(&[("GROWTH_SCALABILITY_ENABLED", "false")]);
    report(&off.1, fleet(2, 90.0));
    let r = recommendation(&off.1);
    assert_eq!(r["state"], "disabled", "{r}");
    assert!(r["desired_instances"].is_null());
}

#[test]
fn stale_instances_drop_out() {
    let (_dir, s) = server(&[("GROWTH_SCALABILITY_STALE_AFTER", "30")]);
    let now = now_ms();
    report(
        &s,
        json!([
            { "instance": "a", "cpu": 50, "memory": 40, "requests_per_second": 12.5, "p95_latency": 80, "connections": 9 },
            { "instance": "b", "cpu": 60, "timestamp": now - 5_000 },
            { "instance": "gone", "cpu": 99, "timestamp": now - 120_000 },
        ]),
    );
    let r = recommendation(&s);
    assert_eq!(r["current_instances"], 2, "{r}");
    let names: Vec<&str> = r["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    // The read lists all three, the silent one as not fresh.
    let sys = s.get_json("/api/analytics/system?range=1h");
    let gone = row_where(&sys["instances"], "instance", "gone").clone();
    assert_eq!(gone["fresh"], false, "{sys}");
    assert_eq!(sys["page"]["total"], 3);
    assert!(!sys["series"].as_array().unwrap().is_empty());
}

#[test]
fn the_window_holds_a_scale_down() {
    let (_dir, s) = server(&[
        ("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "1"),
        ("GROWTH_SCALABILITY_STABILIZATION_WINDOW", "8"),
    ]);
    report(&s, fleet(3, 90.0));
    // The recorder writes one recommendation a second; wait until it has seen 4.
    wait_for(30, "a recorded recommendation of 4", || {
        let h = s.get_json("/api/scaling/history?range=1h");
        h["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["raw_desired"] == 4)
            .then_some(())
    });
    report(&s, fleet(3, 20.0));
    let r = recommendation(&s);
    assert_eq!(r["raw_desired_instances"], 1, "{r}");
    assert_eq!(r["desired_instances"], 3, "held by the window: {r}");
    assert_eq!(r["stabilization"]["held"], true);
    assert_eq!(r["urgency"], "over_provisioned");
    assert!(
        r["reason"].as_str().unwrap().contains("held"),
        "{}",
        r["reason"]
    );
    // Once the window has passed, the scale-down goes through.
    let r = wait_for(60, "the scale-down after the window", || {
        keep_reporting(&s);
        let r = recommendation(&s);
        (r["desired_instances"] == 1).then_some(r)
    });
    assert_eq!(r["stabilization"]["held"], false);
    assert_eq!(r["action"], "scale_down");
}

/// Keeps the 20% fleet fresh while a test waits out a window.
fn keep_reporting(s: &Server) {
    report(s, fleet(3, 20.0));
}

#[test]
fn forecast_follows_a_daily_season() {
    let (_dir, s) = server(&[]);
    let daily = |t_ms: i64| {
        let hour = (t_ms / HOUR_MS).rem_euclid(24) as f64;
        50.0 + 30.0 * (2.0 * std::f64::consts::PI * hour / 24.0).sin()
    };
    let this_hour = now_ms() / HOUR_MS * HOUR_MS;
    let samples: Vec<Value> = (1..=14 * 24)
        .rev()
        .map(|h| {
            let t = this_hour - h * HOUR_MS;
            json!({ "instance": "web-1", "cpu": daily(t), "timestamp": t })
        })
        .collect();
    report(&s, Value::Array(samples));
    let f = s.get_json("/api/scaling/forecast?hours=24");
    assert_eq!(f["state"], "ok", "{f}");
    assert_eq!(f["fleet"], "apps");
    let points = f["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    // Stated error: mean absolute percentage error under 5% on a clean daily series.
    let mut err = 0.0;
    for p in points {
        let t = chrono::DateTime::parse_from_rfc3339(p["t"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let truth = daily(t);
        let v = p["value"].as_f64().unwrap();
        err += (v - truth).abs() / truth;
        assert!(p["low"].as_f64().unwrap() <= v && v <= p["high"].as_f64().unwrap());
    }
    let mape = err / points.len() as f64;
    assert!(mape < 0.05, "MAPE {mape:.3}");
    // Peak 80% of one instance at a 70% target: two instances, set before the peak.
    assert_eq!(f["ahead"]["desired_instances"], 2, "{}", f["ahead"]);
    assert_eq!(f["actual"].as_array().unwrap().len(), 48);

    let (_dir2, empty) = server(&[]);
    let f = empty.get_json("/api/scaling/forecast");
    assert_eq!(f["state"], "not_enough_data");
    assert_eq!(f["needs_hours"], 48);
    let e = error_of(empty.get("/api/scaling/forecast?hours=0"), 400);
    assert!(e["message"].as_str().unwrap().contains("hours"), "{e}");
}

#[test]
fn manifests_are_ready_to_apply() {
    let (_dir, s) = server(&[("GROWTH_SCALABILITY_MIN_INSTANCES", "2")]);
    report(&s, fleet(3, 90.0));
    let m = s.get_json("/api/scaling/manifests?name=web&namespace=shop");
    let hpa = m["hpa"].as_str().unwrap();
    assert!(hpa.starts_with("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler"));
    assert!(hpa.contains("  name: web\n  namespace: shop"), "{hpa}");
    assert!(hpa.contains("minReplicas: 2") && hpa.contains("maxReplicas: 10"));
    assert!(hpa.contains("averageUtilization: 70"));
    assert!(m["keda"].as_str().unwrap().contains("kind: ScaledObject"));
    assert_eq!(m["compose"], "docker compose up -d --scale web=4");
    let e = error_of(s.get("/api/scaling/manifests?name=Web%0Akind"), 400);
    assert_eq!(e["code"], "invalid_parameter");
}

#[test]
fn bad_samples_write_nothing() {
    let (_dir, s) = server(&[]);
    for (body, field) in [
        (
            json!([{ "instance": "a", "cpu": 50 }, { "instance": "b", "cpu": -5 }]),
            "cpu",
        ),
        (json!({ "instance": "", "cpu": 50 }), "instance"),
        (json!({ "instance": "a", "memory": 2000 }), "memory"),
        (
            json!({ "instance": "a", "cpu": 10, "error_rate": 3 }),
            "error_rate",
        ),
    ] {
        let e = error_of(s.post_json("/api/analytics/system", &body), 422);
        assert_eq!(e["field"], field, "{e}");
    }
    let sys = s.get_json("/api/analytics/system");
    assert_eq!(sys["page"]["total"], 0);
    assert_eq!(
        s.get_json("/api/scaling/recommendation")["state"],
        "not_enough_data"
    );
}

/// How this machine can check an exposition: `promtool check metrics` (Debian's
/// `prometheus` package) or the Python `prometheus_client` parser.
enum Checker {
    Promtool,
    Python(PathBuf),
}

fn checker() -> Option<Checker> {
    if Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(Checker::Promtool);
    }
    let python = std::env::var_os("GROWTH_TEST_PYTHON").map(PathBuf::from)?;
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(Checker::Python(python))
}

fn check(checker: &Checker, text: &str) -> (bool, String) {
    let mut cmd = match checker {
        Checker::Promtool => {
            let mut c = Command::new("promtool");
            c.args(["check", "metrics"]);
            c
        }
        Checker::Python(py) => {
            let mut c = Command::new(py);
            c.args([
                "-c",
                "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                 n = sum(1 for _ in p(sys.stdin.read()))\nprint(n, 'families')",
            ]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn metrics_pass_a_real_prometheus_parser() {
    let Some(checker) = checker() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have promtool (.ci/run installs Debian's prometheus package)"
        );
        eprintln!("skipping: no promtool and no prometheus_client in GROWTH_TEST_PYTHON");
        return;
    };
    let (_dir, s) = server(&[("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "1")]);
    let unauth = client().get(format!("{}/metrics", s.url)).send().unwrap();
    assert_eq!(unauth.status(), 401);
    report(&s, fleet(3, 90.0));
    s.get_json("/api/analytics/system");
    let text = wait_for(30, "a host sample in /metrics", || {
        let r = client()
            .get(format!("{}/metrics", s.url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = r.text().unwrap();
        text.contains("growth_host_cpu_ratio").then_some(text)
    });
    for needle in [
        "# TYPE process_cpu_seconds_total counter",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "growth_http_requests_total{method=\"POST\",route=\"/api/analytics/system\",status=\"2xx\"} 1",
        "growth_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/analytics/system\",le=\"+Inf\"} 1",
        "growth_ingest_rows_total{table=\"system_metrics\"}",
        "growth_store_commit_rows_bucket{le=\"+Inf\"}",
        "growth_ai_gateway_calls_total 0",
        "growth_ai_cache_entries 0",
        "growth_http_open_connections ",
        "growth_host_disk_free_bytes ",
        "growth_scaling_current_instances 3",
        "growth_scaling_desired_instances 4",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    let (ok, said) = check(&checker, &text);
    assert!(ok, "the parser refused the exposition: {said}\n{text}");
    // The parser must be able to fail: a broken line is refused.
    let (ok, _) = check(&checker, "growth_broken{le=\"1\" 2\n");
    assert!(!ok, "the checker accepts anything");
}

/// BENCHMARKS.md: the recommendation (and the forecast and the 30-day read) over 30 days of
/// 15-second samples from 50 instances (8.64 million rows), median of 20 calls each.
/// `cargo test --release --test it scaling::bench_ -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: fills 8.6 million rows"]
fn bench_recommendation_over_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("growth.duckdb");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fill = Instant::now();
    rt.block_on(async {
        let opts = growth_stack::store::StoreOptions {
            memory_limit: "1GB".into(),
            threads: 2,
            queue_rows: 1000,
            max_commit_rows: 1000,
            read_connections: 1,
            wal_checkpoint: "64MB".into(),
        };
        let store = growth_stack::store::Store::open(&db, &opts).unwrap();
        store
            .maintain(|conn| {
                conn.execute_batch(
                    "INSERT INTO system_metrics (instance, source, ts, cpu, memory, requests_per_second, \
                        p95_latency, connections, created_at) \
                     SELECT 'web-' || i, 'app', t, \
                        40 + 25 * sin(2 * pi() * hour(t) / 24) + random() * 10, 50 + random() * 20, \
                        100 + random() * 50, 80 + random() * 40, (random() * 100)::INTEGER, t \
                     FROM range(now()::TIMESTAMP - INTERVAL 30 DAY, now()::TIMESTAMP, INTERVAL 15 SECOND) s(t), \
                        range(50) r(i) \
                     ORDER BY t, i",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    let filled = fill.elapsed();
    let s = Server::start_in(
        dir.path(),
        &[],
        &[("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "0")],
    );
    let rows = s.get_json("/api/analytics/system?range=1h&limit=1")["page"]["total"].clone();
    // A live fleet keeps reporting: one fresh sample per instance before each timed read,
    // so the 50 count as running (the fill ended before the server started).
    let fresh = || report(&s, fleet(50, 55.0));
    fresh();
    let time = |path: &str| {
        let mut ms: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let r = s.get(path);
                assert_eq!(r.status(), 200, "{path}");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[ms.len() * 9 / 10])
    };
    let rec = s.get_json("/api/scaling/recommendation");
    assert_eq!(rec["current_instances"], 50, "{rec}");
    for path in [
        "/api/scaling/recommendation",
        "/api/scaling/forecast",
        "/api/analytics/system?range=30d",
        "/metrics",
    ] {
        fresh();
        let (med, p90) = time(path);
        println!("{path}: median {med:.1} ms, p90 {p90:.1} ms");
    }
    println!(
        "filled 8.64M rows in {:.1} s; rows in the last hour: {rows}",
        filled.as_secs_f64()
    );
}
