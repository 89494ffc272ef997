//! Web vitals on the ClickHouse engine: the same beacons through a DuckDB node and a node on
//! a two-shard ClickHouse cluster give the same answers on every vitals read (percentiles to
//! the last bit), the overview's headline included; beacons written through two nodes land
//! on both shards and read the same through either, re-reports deduplicated across nodes.

use serde_json::{json, Value};

use crate::clickhouse::{day_start, iso, node, node_with};
use crate::clickhouse_servers::{ChCluster, CLUSTER};
use crate::helpers::Server;

const PERF: &str = "/api/analytics/performance";
const MINUTE_MS: i64 = 60_000;

/// Fractions of values: a browser's float, tenths and whole values.
const FRACTIONS: [f64; 4] = [0.68, 0.599_999_904_632_6, 0.1, 0.0];
/// Values 18.16 reads wrongly from decimal text, one unit in the last place off.
const MISREAD: [f64; 5] = [
    1_900.074_609_503_558_1,
    119.290_395_703_910_97,
    1_768.934_889_208_017_5,
    3_770.020_358_259_360_4,
    2_433.042_774_307_925_4,
];

/// A page view as our tracker sends it, `n`-th of the fixture, at `t` (ms).
fn page_view(n: i64, t: i64) -> Value {
    let routes = [
        json!({ "route": "/" }),
        json!({ "path": "/recipes/12" }),
        json!({ "url": "https://app.example/recipes/98?ref=x" }),
        json!({ "route": "/blog/[slug]" }),
        json!({}),
    ];
    let devices = [
        json!({ "device": "mobile" }),
        json!({ "device": "desktop" }),
        json!({ "device": "tablet" }),
        json!({}),
    ];
    let lcp = match n % 11 {
        0 => 2500.0,
        1 => 4000.0,
        _ => 900.0 + (n * 137 % 3900) as f64 + FRACTIONS[(n % 4) as usize],
    };
    let mut v = json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "metric_id": format!("pv-{n}"),
        "lcp": lcp,
        // 1.68 is stored as 1.6800000000000002 when sent as text.
        "cls": if n % 17 == 5 { 1.68 } else { (n * 7 % 40) as f64 / 100.0 },
        "fcp": 400.0 + (n * 53 % 2800) as f64 + FRACTIONS[(n % 3) as usize],
        "sessionId": format!("s{}", n / 3),
        "userId": format!("u{}", n % 7),
        "timestamp": t,
        "createdAt": iso(t + 2000),
    });
    let o = v.as_object_mut().unwrap();
    if n % 6 == 1 {
        o.insert("ttfb".into(), json!(MISREAD[(n % 5) as usize]));
    } else if n % 3 != 0 {
        o.insert("ttfb".into(), json!(50.0 + (n * 29 % 1900) as f64 + 0.68));
    }
    if n % 5 == 2 {
        o.insert("inp".into(), json!((n * 41 % 700) as f64));
    }
    for extra in [&routes[(n % 5) as usize], &devices[(n % 4) as usize]] {
        o.extend(extra.as_object().unwrap().clone());
    }
    v
}

/// A web-vitals object (`onINP`, `onCLS`, ...): the first report's `delta` is its value,
/// a later one's the change since.
fn web_vital(n: i64, name: &str, value: f64, delta: f64, t: i64) -> Value {
    let route = ["/", "/recipes/:id", "/search"][(n % 3) as usize];
    let device = ["mobile", "desktop"][(n % 2) as usize];
    json!({
        "name": name, "value": value, "delta": delta,
        "id": format!("v5-{n}-{name}"), "navigationType": "navigate",
        "route": route, "device": device,
        "sessionId": format!("w{}", n / 2), "timestamp": t,
        "attribution": { "interactionTarget": "#add", "inputDelay": 12.68, "nested": { "a": [1, 2.5] } },
    })
}

/// The fixture as request bodies in posting order: page views over six days, web-vitals
/// objects, then re-reports of both kinds (separate requests, so each is received later
/// than what it replaces).
fn fixture() -> Vec<Value> {
    let mut bodies = Vec::new();
    let mut views = Vec::new();
    for n in 0..72i64 {
        let t = day_start(7) + (n / 12) * 86_400_000 + (n % 12) * 97 * MINUTE_MS + n;
        views.push(page_view(n, t));
    }
    for chunk in views.chunks(25) {
        bodies.push(Value::Array(chunk.to_vec()));
    }
    let mut first = Vec::new();
    let mut again = Vec::new();
    for n in 0..24i64 {
        let t = day_start(6) + n * 41 * MINUTE_MS + 7;
        let (name, v0) = match n % 3 {
            0 => (
                "INP",
                120.0 + (n * 31 % 500) as f64 + FRACTIONS[(n % 4) as usize],
            ),
            1 => ("CLS", (n * 3 % 30) as f64 / 100.0 + 0.0068),
            _ => ("LCP", 1800.0 + (n * 211 % 2600) as f64 + 0.68),
        };
        first.push(web_vital(n, name, v0, v0, t));
        if n % 2 == 0 {
            let v1 = v0 * 1.5 + 0.68;
            again.push(web_vital(n, name, v1, v1 - v0, t + 30_000));
        }
    }
    bodies.push(Value::Array(first));
    bodies.push(Value::Array(again));
    // Our tracker's second report of a page view: the whole row replaces the first.
    let reports: Vec<Value> = (0..72i64)
        .filter(|n| n % 9 == 4)
        .map(|n| {
            let t = day_start(7) + (n / 12) * 86_400_000 + (n % 12) * 97 * MINUTE_MS + n;
            let mut v = page_view(n, t + 5000);
            let o = v.as_object_mut().unwrap();
            o.insert(
                "id".into(),
                json!(format!("00000000-0000-4000-9000-{n:012}")),
            );
            o.insert("report".into(), json!(2));
            o.insert("cls".into(), json!(0.31));
            o.insert("inp".into(), json!(260.68));
            o.insert("createdAt".into(), json!(iso(t + 9000)));
            v
        })
        .collect();
    bodies.push(Value::Array(reports));
    bodies
}

fn post_all(s: &Server, bodies: &[Value]) -> u64 {
    let mut accepted = 0;
    for body in bodies {
        let r = s.post_json(PERF, body);
        let status = r.status();
        let reply: Value = r.json().unwrap();
        assert_eq!(status, 200, "{reply}");
        accepted += reply["accepted"].as_u64().unwrap();
    }
    accepted
}

/// `v` without what differs per node by design: the id and receive time of web-vitals
/// objects (they carry neither, so each node makes its own).
fn comparable(mut v: Value) -> Value {
    if let Some(rows) = v.get_mut("rows").and_then(Value::as_array_mut) {
        for r in rows {
            if !r["metric"].is_null() {
                let o = r.as_object_mut().unwrap();
                o.remove("id");
                o.remove("created_at");
            }
        }
    }
    v
}

/// Where `a` and `b` first differ (a JSON path and both values), if they do.
fn difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let none = Value::Null;
                let (p, q) = (x.get(k).unwrap_or(&none), y.get(k).unwrap_or(&none));
                difference(p, q, &format!("{at}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, &format!("{at}[{i}]"))),
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

fn assert_same(a: &Value, b: &Value, what: &str) {
    if let Some(d) = difference(a, b, "") {
        panic!("{what}: {d}");
    }
}

fn windows() -> (String, String) {
    (
        format!("from={}&to={}", iso(day_start(8)), iso(day_start(-1))),
        format!("from={}&to={}", iso(day_start(5)), iso(day_start(3))),
    )
}

fn reads() -> Vec<String> {
    let (all, part) = windows();
    let mut gets = vec![
        format!("{PERF}?{all}&limit=500"),
        format!("{PERF}?{all}&limit=7&offset=3"),
        format!("{PERF}?{all}&stat=p90"),
        format!("{PERF}?{all}&stat=p50&device=mobile"),
        format!("{PERF}?{all}&route=%2Frecipes%2F%3Aid&stat=p99"),
        format!("{PERF}?{all}&device=unknown"),
        format!("{PERF}?{part}&limit=100"),
        format!("{PERF}/routes?{all}"),
        format!("{PERF}/routes?{all}&stat=p95"),
        format!("{PERF}/routes?{all}&device=desktop"),
        format!("{PERF}/routes?{part}&route=%2F"),
        format!("{PERF}/histogram?{all}&metric=LCP&device=tablet"),
        format!("{PERF}/histogram?{part}&metric=cls"),
        format!("{PERF}/histogram?{all}&metric=inp&route=%2Fsearch"),
    ];
    for m in ["lcp", "inp", "cls", "fcp", "ttfb", "fid"] {
        gets.push(format!("{PERF}/histogram?{all}&metric={m}"));
    }
    gets
}

/// The overview's web-vitals headline of a ClickHouse node, computed in-process by the
/// same `app::build` the server runs (the overview endpoint also needs AI and database
/// metrics, which are not on ClickHouse yet).
fn clickhouse_headline(ch: &ChCluster, from_ms: i64, to_ms: i64) -> Value {
    use growth_stack::config::{Config, Sources};
    let dir = tempfile::tempdir().unwrap();
    let urls = toml::Value::Array(vec![ch.url(0).into(), ch.url(1).into()]);
    let config = Config::load(Sources {
        file: None,
        env: &|_| None,
        flags: vec![
            ("server.listen", "127.0.0.1:0".into()),
            (
                "server.data_dir",
                dir.path().join("data").display().to_string().into(),
            ),
            ("server.admin_token", crate::helpers::TOKEN.into()),
            ("storage.engine", "clickhouse".into()),
            ("clickhouse.url", urls),
            ("clickhouse.cluster", CLUSTER.into()),
        ],
    })
    .unwrap();
    let window = growth_stack::http::Window {
        from: chrono::DateTime::from_timestamp_millis(from_ms).unwrap(),
        to: chrono::DateTime::from_timestamp_millis(to_ms).unwrap(),
        limit: 10,
        offset: 0,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let app = growth_stack::app::build(config).await.unwrap();
        let (headline, estimated) = growth_stack::vitals::headline(&app.state, window)
            .await
            .unwrap();
        assert!(!estimated, "ClickHouse reads the rows");
        serde_json::to_value(headline).unwrap()
    })
}

#[test]
fn duckdb_and_clickhouse_give_the_same_vitals() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    let bodies = fixture();
    let sent: usize = bodies.iter().map(|b| b.as_array().unwrap().len()).sum();
    for s in [&d, &c] {
        assert_eq!(post_all(s, &bodies), sent as u64);
    }
    // Stored on both shards, every row once.
    let on = |i| ch.count(i, "SELECT count() FROM growth.performance_metrics_local");
    let (s0, s1) = (on(0), on(1));
    assert!(s0 > 0 && s1 > 0, "rows on both shards: {s0} + {s1}");
    assert_eq!(s0 + s1, sent as u64);
    // Each metric instance's reports on one shard (the sharding key is the instance).
    for i in 0..2 {
        let split = ch.count(
            i,
            "SELECT count() FROM (SELECT metric_id FROM growth.performance_metrics_local \
             WHERE metric_id IS NOT NULL GROUP BY metric_id, metric HAVING count() > 1)",
        );
        assert!(split > 0, "re-reports stored next to what they replace");
    }

    let gets = reads();
    // The fixture is all there, re-reports counted once.
    let first = c.get_json(&gets[0]);
    let replaced = 12 + 8;
    assert_eq!(first["totals"]["samples"], sent as u64 - replaced);
    assert_eq!(
        first["rows"].as_array().unwrap().len(),
        sent - replaced as usize
    );
    for path in &gets {
        assert_same(
            &comparable(d.get_json(path)),
            &comparable(c.get_json(path)),
            &format!("GET {path}"),
        );
    }
    let rows = first["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["lcp"] == json!(2500.0)));
    assert!(rows.iter().any(|r| r["cls"] == json!(0.1)));
    // The fixture holds values that 18.16 reads inexactly from decimal text (so equal
    // answers show they were not sent as text).
    let texts: Vec<String> = rows
        .iter()
        .flat_map(|r| ["lcp", "fcp", "ttfb", "inp", "cls"].map(|m| r[m].as_f64()))
        .flatten()
        .map(|v| format!("'{v}'"))
        .collect();
    let misread = ch.count(
        0,
        &format!(
            "SELECT countIf(toString(toFloat64(s)) != s) FROM (SELECT arrayJoin([{}]) AS s)",
            texts.join(", ")
        ),
    );
    assert!(
        misread > 0,
        "no value of the fixture trips 18.16's float parser"
    );
    // Interpolated percentiles, not one of the values: 80 LCP values, so p75 lies a
    // quarter of the way from the 60th to the 61st.
    let p75 = first["vitals"]["lcp"]["p75"].as_f64().unwrap();
    let lcps: Vec<f64> = rows.iter().filter_map(|r| r["lcp"].as_f64()).collect();
    assert_eq!(lcps.len(), 80);
    assert!(!lcps.contains(&p75), "p75 {p75} interpolated");

    // The overview's headline: each metric's p75 and count as the summary gives them.
    let (from, to) = (day_start(8), day_start(-1));
    let headline = clickhouse_headline(&ch, from, to);
    let duck = d.get_json(&format!("{PERF}?from={}&to={}", iso(from), iso(to)));
    for m in ["lcp", "inp", "cls", "fcp", "ttfb"] {
        assert_eq!(headline[m]["p75"], duck["vitals"][m]["p75"], "{m}");
        assert_eq!(headline[m]["count"], duck["vitals"][m]["count"], "{m}");
        assert_eq!(headline[m]["rating"], duck["vitals"][m]["rating"], "{m}");
        assert!(headline[m]["count"].as_u64().unwrap() > 0, "{m}");
    }
}

#[test]
fn vitals_written_through_two_nodes_read_the_same_through_either() {
    let ch = ChCluster::start(2);
    let (a, _da) = node(&ch, &[0, 1]);
    let (b, _db) = node_with(&ch, &[1, 0], &[("GROWTH_CLICKHOUSE_GZIP", "true")]);
    let bodies = fixture();
    let sent: usize = bodies.iter().map(|b| b.as_array().unwrap().len()).sum();
    // Alternate nodes: a re-report often reaches another node than its first report.
    for (i, body) in bodies.iter().enumerate() {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(s.post_json(PERF, body).status(), 200);
    }
    let on = |i| ch.count(i, "SELECT count() FROM growth.performance_metrics_local");
    assert_eq!(on(0) + on(1), sent as u64);
    assert!(on(0) > 0 && on(1) > 0);
    for path in reads() {
        assert_same(
            &a.get_json(&path),
            &b.get_json(&path),
            &format!("GET {path}"),
        );
    }
    let (all, _) = windows();
    let s = a.get_json(&format!("{PERF}?{all}&limit=500"));
    assert_eq!(s["totals"]["samples"], sent as u64 - 20);
    // The web-vitals CLS of instance 4 was re-reported through the other node: only its
    // newest value counts.
    let rows = s["rows"].as_array().unwrap();
    let cls4: Vec<&Value> = rows
        .iter()
        .filter(|r| r["metric_id"] == "v5-4-CLS")
        .collect();
    assert_eq!(cls4.len(), 1, "{cls4:?}");
    let v0 = (4.0 * 3.0 % 30.0) / 100.0 + 0.0068;
    let got = cls4[0]["cls"].as_f64().unwrap();
    assert!((got - (v0 * 1.5 + 0.68)).abs() < 1e-12, "{got}");
}
