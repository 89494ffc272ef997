//! The last growth reads and the export on the ClickHouse engine: the same fixture posted to
//! a DuckDB node and to a ClickHouse node (2 shards) gives the same JSON for a person's
//! profile, for funnels with every filter operator and breakdowns, and the same bytes for
//! every CSV and JSON Lines export of every stream ClickHouse holds (Parquet: the same
//! schema and rows).

use serde_json::{json, Value};

use crate::clickhouse::{day_start, iso, node};
use crate::clickhouse_servers::ChCluster;
use crate::helpers::{client, error_of, Server, TOKEN};

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Posts `items` to `path` on every server, in order, in one request each.
fn post_all(servers: &[&Server], path: &str, items: &[Value]) {
    for s in servers {
        let r = s.post_json(path, &Value::Array(items.to_vec()));
        assert_eq!(r.status(), 200, "POST {path}: {:?}", r.text());
    }
}

/// People signing up with plans of every JSON kind (text, number, boolean, none, an object,
/// a `plan` only nested deeper, which 18.16's `visitParam*` would find), viewing pages and
/// buying; times increase in list order, so insertion order is event-time order.
fn growth_fixture() -> Vec<Value> {
    let base = day_start(5) + 3_600_000;
    let plans = [
        json!({ "plan": "pro", "src": "ads" }),
        json!({ "plan": "free", "src": "mail" }),
        json!({ "plan": 3, "src": "ads" }),
        json!({ "plan": true }),
        json!({ "meta": { "plan": "pro" }, "src": "mail" }),
        json!({ "plan": { "tier": "team", "seats": 1.5e21 }, "src": "ads" }),
        json!({ "plan": null, "src": "ads" }),
        json!({ "plan": "pro", "src": "mail", "n": 0.1 }),
    ];
    let mut out = Vec::new();
    let mut n = 0i64;
    let mut ev = |user: i64, event: &str, at: i64, props: Value, feature: Option<&str>| {
        n += 1;
        let mut e = json!({
            "id": format!("00000000-0000-4000-8000-{n:012}"),
            "event": event, "userId": format!("user{user}"), "sessionId": format!("s{user}"),
            "timestamp": at, "createdAt": iso(at),
        });
        let o = e.as_object_mut().unwrap();
        let mut props = props;
        if let (Some(p), Some(f)) = (props.as_object_mut(), feature) {
            p.insert("feature".into(), json!(f));
        }
        if props.as_object().is_some_and(|p| !p.is_empty()) {
            o.insert("properties".into(), props);
        }
        out.push((at, e));
    };
    for u in 0..16i64 {
        let t0 = base + (u % 4) * DAY_MS + u * 7 * MINUTE_MS;
        ev(u, "signup", t0, plans[(u % 8) as usize].clone(), None);
        if u % 3 != 2 {
            let page = if u % 2 == 0 { "/pricing" } else { "/docs" };
            ev(
                u,
                "view",
                t0 + 5 * MINUTE_MS,
                json!({ "page": page, "n": 1.5 }),
                Some(["search", "export"][(u % 2) as usize]),
            );
            ev(
                u,
                "view",
                t0 + 9 * MINUTE_MS,
                json!({ "page": "/docs" }),
                Some("search"),
            );
        }
        if u % 4 != 3 {
            let amount = if u % 2 == 0 { 10 } else { 20 };
            let currency = if u % 5 == 0 { "USD" } else { "EUR" };
            ev(
                u,
                "purchase",
                t0 + (20 + u) * MINUTE_MS,
                json!({ "amount": amount, "currency": currency }),
                None,
            );
        }
        // A second entry a day later: entry is the first signup only.
        if u % 5 == 1 {
            ev(u, "signup", t0 + DAY_MS, json!({ "plan": "team" }), None);
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, e)| e).collect()
}

/// A checkout funnel in `conversions`, with a coupon property on some entries.
fn conversion_fixture() -> Vec<Value> {
    let base = day_start(4) + 7_200_000;
    let mut out = Vec::new();
    for u in 0..9i64 {
        for (k, step) in ["cart", "pay", "done"]
            .iter()
            .take(1 + (u % 3) as usize)
            .enumerate()
        {
            let at = base + u * 10 * MINUTE_MS + k as i64 * 30_000;
            let mut c = json!({ "id": format!("00000000-0000-4000-9000-{:012}", out.len()),
                "funnel": "Checkout", "step": step, "userId": format!("user{u}"),
                "timestamp": at, "createdAt": iso(at) });
            if k == 0 && u % 2 == 0 {
                c["properties"] = json!({ "coupon": if u % 4 == 0 { "SPRING" } else { "NONE" } });
            }
            out.push((at, c));
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, c)| c).collect()
}

fn post_funnel(s: &Server, body: &Value) -> Value {
    let r = client()
        .post(format!("{}/api/analytics/funnels", s.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{body}: {:?}", r.text());
    r.json().unwrap()
}

#[test]
fn funnels_with_filters_and_breakdowns_match_duckdb() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    post_all(&[&d, &c], "/api/analytics/events", &growth_fixture());
    post_all(
        &[&d, &c],
        "/api/analytics/conversions",
        &conversion_fixture(),
    );
    let (from, to) = (iso(day_start(8)), iso(day_start(-1)));
    let step = |event: &str, filters: Value| json!({ "event": event, "filters": filters });
    let bodies = [
        // eq on text; the person whose `plan` is nested only is not in.
        json!({ "steps": [step("signup", json!([{ "property": "plan", "value": "pro" }])), "view", "purchase"] }),
        // neq: none, null, other kinds and the nested-only one are all distinct from "free".
        json!({ "steps": [step("signup", json!([{ "property": "plan", "op": "neq", "value": "free" }])),
            step("view", json!([{ "property": "page", "op": "eq", "value": "/pricing" }])),
            step("purchase", json!([{ "property": "currency", "op": "=", "value": "EUR" },
                                    { "property": "amount", "op": "!=", "value": 20 }]))] }),
        // A number, a boolean and a float read as their JSON text.
        json!({ "steps": [step("signup", json!([{ "property": "plan", "value": 3 }])), "purchase"] }),
        json!({ "steps": [step("signup", json!([{ "property": "plan", "value": true }])), "purchase"] }),
        json!({ "steps": ["signup", step("view", json!([{ "property": "n", "value": 1.5 }]))] }),
        // A property no row has: eq matches nobody, neq everybody.
        json!({ "steps": [step("signup", json!([{ "property": "nope", "op": "neq", "value": "x" }])), "view"] }),
        // The same name twice, one filtered.
        json!({ "steps": ["view", step("view", json!([{ "property": "page", "value": "/docs" }])), "purchase"] }),
        // Breakdowns: by a property of every kind (objects and numbers as JSON text, none
        // as null), with and without filters.
        json!({ "steps": ["signup", "view", "purchase"], "breakdown": "plan" }),
        json!({ "steps": ["signup", "purchase"], "breakdown": "src", "window": "1h" }),
        json!({ "steps": [step("signup", json!([{ "property": "src", "value": "ads" }])), "view", "purchase"],
            "breakdown": "plan" }),
        json!({ "steps": ["view", "purchase"], "breakdown": "page" }),
    ];
    for mut body in bodies {
        body["from"] = json!(from);
        body["to"] = json!(to);
        let (dj, cj) = (post_funnel(&d, &body), post_funnel(&c, &body));
        assert!(
            dj["steps"][0]["users"].as_u64().unwrap() > 0,
            "{body}: {dj}"
        );
        assert_eq!(dj, cj, "POST funnels {body}");
    }
    let nobody = json!({ "steps": [step("signup", json!([{ "property": "nope", "value": "x" }])), "view"],
        "from": from, "to": to });
    let dj = post_funnel(&d, &nobody);
    assert_eq!(dj["steps"][0]["users"], 0);
    assert_eq!(dj, post_funnel(&c, &nobody));
    // The breakdown of the plans holds every kind of value (so the equality above saw them).
    let by_plan = post_funnel(
        &c,
        &json!({ "steps": ["signup", "view"], "breakdown": "plan", "from": from, "to": to }),
    );
    let values: Vec<Value> = by_plan["breakdowns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].clone())
        .collect();
    for want in [
        json!("pro"),
        json!("3"),
        json!("true"),
        Value::Null,
        json!("{\"seats\":1.5e21,\"tier\":\"team\"}"),
    ] {
        assert!(values.contains(&want), "{want} in {values:?}");
    }
    let window = format!("from={from}&to={to}");
    for path in [
        format!("/api/analytics/funnels/Checkout?{window}&breakdown=coupon"),
        format!("/api/analytics/funnels/Checkout?{window}&steps=cart,done&breakdown=coupon"),
    ] {
        let dj = d.get_json(&path);
        assert_eq!(dj["breakdowns"].as_array().map(Vec::len), Some(3), "{dj}");
        assert_eq!(dj, c.get_json(&path), "GET {path}");
    }
    // Bad input is the same clear error on both engines.
    let bad = json!({ "steps": [step("signup", json!([{ "property": "plan", "op": "gt", "value": 1 }])), "view"] });
    for s in [&d, &c] {
        let r = client()
            .post(format!("{}/api/analytics/funnels", s.url))
            .bearer_auth(TOKEN)
            .json(&bad)
            .send()
            .unwrap();
        assert_eq!(error_of(r, 422)["field"], "op");
    }
}

#[test]
fn a_person_reads_the_same_on_both_engines() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[1, 0]);
    let d = Server::start();
    let events = growth_fixture();
    // In two requests, so DuckDB may have folded part of a profile between them.
    let (a, b) = events.split_at(events.len() / 2);
    post_all(&[&d, &c], "/api/analytics/events", a);
    post_all(&[&d, &c], "/api/analytics/events", b);
    for id in ["user0", "user1", "user6", "user11"] {
        for q in ["", "?limit=2"] {
            let path = format!("/api/analytics/users/{id}{q}");
            let dj = d.get_json(&path);
            assert!(dj["profile"]["total_events"].as_u64().unwrap() > 0, "{dj}");
            assert_eq!(dj, c.get_json(&path), "GET {path}");
        }
    }
    let user0 = c.get_json("/api/analytics/users/user0");
    assert_eq!(user0["profile"]["features_used"], json!(["search"]));
    assert_eq!(user0["events"][0]["properties"]["currency"], "USD");
    for s in [&d, &c] {
        let r = s.get("/api/analytics/users/nobody");
        assert_eq!(error_of(r, 404)["code"], "not_found");
    }
}

/// Rows of every stream ClickHouse holds, times increasing in list order.
fn export_fixture() -> Vec<(&'static str, Vec<Value>)> {
    let base = day_start(3) + 3_600_000;
    let at = |i: i64| base + i * 13 * MINUTE_MS + i;
    let routes = ["/", "/recipes/:id"];
    let vitals: Vec<Value> = (0..12i64)
        .map(|i| {
            let mut v = json!({
                "id": format!("00000000-0000-4000-a000-{i:012}"),
                "route": routes[(i % 2) as usize], "device": "mobile",
                "lcp": 900.25 + i as f64 * 37.5, "cls": if i == 5 { 1.68 } else { i as f64 / 100.0 },
                "userId": format!("user{i}"), "sessionId": format!("s{i}"),
                "timestamp": at(i), "createdAt": iso(at(i)),
            });
            if i % 3 == 1 {
                v["ttfb"] = json!(50.68);
            }
            v
        })
        .collect();
    let ai: Vec<Value> = (0..10i64)
        .map(|i| {
            let mut v = json!({
                "id": format!("00000000-0000-4000-b000-{i:012}"),
                "requestId": format!("call-{i}"), "model": "gpt-4o-mini",
                "endpoint": "/v1/chat/completions", "duration": 10.25 + i as f64,
                "cacheHit": i % 3 == 0, "userId": format!("user{}", i % 4),
                "timestamp": at(i), "createdAt": iso(at(i)),
            });
            if i % 2 == 0 {
                v["tokens"] = json!(100 + i);
            }
            if i == 7 {
                v["success"] = json!(false);
                v["error"] = json!("rate limited, \"quoted\"\nnewline");
            }
            v
        })
        .collect();
    let db: Vec<Value> = (0..10i64)
        .map(|i| {
            json!({
                "id": format!("00000000-0000-4000-c000-{i:012}"),
                "query": format!("SELECT * FROM t WHERE a = '{i}', b = \"x\""),
                "duration": 3.5 + i as f64 * 0.25, "rows": i, "cached": i % 2 == 0,
                "userId": format!("user{i}"), "route": "/r",
                "timestamp": at(i), "createdAt": iso(at(i)),
            })
        })
        .collect();
    vec![
        ("/api/analytics/events", growth_fixture()),
        ("/api/analytics/conversions", conversion_fixture()),
        ("/api/analytics/performance", vitals),
        ("/api/analytics/ai-performance", ai),
        ("/api/analytics/database-performance", db),
    ]
}

/// A Parquet file's column names and types, then its rows as DuckDB writes them in CSV.
fn parquet_as_csv(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (file, csv) = (dir.path().join("x.parquet"), dir.path().join("x.csv"));
    std::fs::write(&file, bytes).unwrap();
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let source = format!("read_parquet('{}')", file.display());
    let mut stmt = conn
        .prepare(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source})"
        ))
        .unwrap();
    let schema: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    conn.execute_batch(&format!(
        "COPY (SELECT * FROM {source}) TO '{}' (FORMAT csv, HEADER true)",
        csv.display()
    ))
    .unwrap();
    format!(
        "{}\n{}",
        schema.join(", "),
        std::fs::read_to_string(csv).unwrap()
    )
}

#[test]
fn exports_are_the_same_bytes_on_both_engines() {
    let ch = ChCluster::start(2);
    let (c, _dc) = node(&ch, &[0, 1]);
    let d = Server::start();
    let fixture = export_fixture();
    for (path, items) in &fixture {
        post_all(&[&d, &c], path, items);
    }
    let export = |s: &Server, q: &str| {
        let r = s.get(&format!("/api/export?{q}"));
        assert_eq!(r.status(), 200, "{q}: {:?}", r.text());
        let rows: u64 = r.headers()["x-export-rows"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let ty = r.headers()["content-type"].to_str().unwrap().to_string();
        (rows, ty, r.bytes().to_vec())
    };
    // Part of every stream: from inside the conversions to inside the metrics.
    let span = format!(
        "from={}&to={}",
        iso(day_start(4) + 7_200_000 + 25 * MINUTE_MS),
        iso(day_start(3) + 3_600_000 + 80 * MINUTE_MS)
    );
    for (stream, (_, items)) in ["events", "conversions", "performance", "ai", "database"]
        .iter()
        .zip(&fixture)
    {
        for format in ["csv", "jsonl", "parquet"] {
            for q in [
                format!("stream={stream}&format={format}"),
                format!("stream={stream}&format={format}&{span}"),
            ] {
                let (dn, dt, db) = export(&d, &q);
                let (cn, ct, cb) = export(&c, &q);
                assert_eq!((dn, &dt), (cn, &ct), "{q}");
                assert!(dn > 0 && dn <= items.len() as u64, "{q}: {dn} rows");
                if format == "parquet" {
                    // DuckDB's Parquet pages depend on how its vectors were stored, not
                    // only on the values: the same schema and rows are what must match.
                    assert_eq!(parquet_as_csv(&db), parquet_as_csv(&cb), "{q}");
                } else {
                    assert_eq!(
                        String::from_utf8_lossy(&db),
                        String::from_utf8_lossy(&cb),
                        "{q}: the same bytes"
                    );
                }
            }
        }
        let (all, _, _) = export(&c, &format!("stream={stream}&format=csv"));
        assert_eq!(all, items.len() as u64, "{stream}: every row");
    }
    // The streams ClickHouse holds beside these (errors, load samples, recommendations)
    // export with the DuckDB tables' columns too: the same header on both engines. (Their
    // rows differ: each node samples its own host.)
    for stream in ["errors", "system", "recommendations"] {
        let q = format!("stream={stream}&format=csv");
        let (_, dt, db) = export(&d, &q);
        let (_, ct, cb) = export(&c, &q);
        let header = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .next()
                .map(str::to_string)
        };
        assert_eq!((dt, header(&db)), (ct, header(&cb)), "{q}");
    }
    let r = c.get("/api/export?stream=nope");
    assert_eq!(r.status(), 400);
}
