//! Web vitals: the tracker in a real browser, web-vitals / Next.js objects, re-reports and
//! bfcache restores, percentiles, ratings, score and opportunity against hand-computed
//! values, route templates, histograms and bad payloads.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{chromium_for, client, error_of, row_where, run_browser_script, Server};

const DESKTOP_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const PERF: &str = "/api/analytics/performance";

/// Posts as a browser beacon would: text/plain, with a user agent.
fn beacon(s: &Server, ua: &str, body: &Value) -> crate::helpers::Response {
    client()
        .post(format!("{}{PERF}", s.url))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", ua)
        .body(body.to_string())
        .send()
        .unwrap()
}

fn accepted(resp: crate::helpers::Response) -> u64 {
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert_eq!(status, 200, "{body}");
    body["accepted"].as_u64().unwrap()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-4)
}

#[test]
fn web_vitals_and_nextjs_objects_as_is() {
    let s = Server::start();
    // What web-vitals v5 hands to onLCP, with attribution and entries, posted as-is.
    let lcp = json!({
        "name": "LCP", "value": 2150.5, "rating": "good", "delta": 2150.5, "id": "v5-1700000000000-1234",
        "navigationType": "navigate", "entries": [{}],
        "attribution": { "target": "#hero", "url": "https://cdn.example/hero.jpg", "timeToFirstByte": 300,
            "resourceLoadDelay": 100, "resourceLoadDuration": 900, "elementRenderDelay": 850 },
    });
    assert_eq!(accepted(beacon(&s, DESKTOP_UA, &lcp)), 1);
    // Next.js useReportWebVitals (app router) and reportWebVitals (pages router: label, startTime).
    let batch = json!([
        { "name": "INP", "value": 320, "rating": "needs-improvement", "delta": 320, "id": "v5-1700000000001-1",
          "navigationType": "navigate", "entries": [], "route": "/recipes/[id]" },
        { "name": "CLS", "value": 0.02, "delta": 0.02, "id": "v5-1700000000002-2", "label": "web-vital",
          "startTime": 0, "navigationType": "reload", "url": "https://app.example/recipes/42?ref=x" },
        { "name": "TTFB", "value": 90, "delta": 90, "id": "v5-1700000000003-3", "rating": "good",
          "navigationType": "navigate", "entries": [] },
        // The pages router hands Next.js's own timings to the same callback: skipped, not refused.
        { "name": "Next.js-hydration", "value": 12.3, "id": "1700000000004-4", "label": "custom",
          "startTime": 40.1 },
    ]);
    // A same-origin report carries the page in its Referer.
    let host = s.url.trim_start_matches("http://").to_string();
    let r = client()
        .post(format!("{}{PERF}", s.url))
        .header("content-type", "application/json")
        .header("user-agent", PHONE_UA)
        .header("referer", format!("http://{host}/meal-plan/31"))
        .body(batch.to_string())
        .send()
        .unwrap();
    let reply: Value = r.json().unwrap();
    assert_eq!(reply, json!({ "accepted": 3, "ignored": 1 }));

    let d = s.get_json(&format!("{PERF}?range=1h&limit=10"));
    assert_eq!(d["totals"]["samples"], 4);
    for (m, v) in [
        ("lcp", 2150.5),
        ("inp", 320.0),
        ("cls", 0.02),
        ("ttfb", 90.0),
    ] {
        assert_eq!(d["vitals"][m]["count"], 1, "{m}");
        assert!(close(&d["vitals"][m]["p75"], v), "{m}: {}", d["vitals"][m]);
    }
    let rows = d["rows"].as_array().unwrap();
    let by_metric = |m: &str| rows.iter().find(|r| r["metric"] == m).unwrap().clone();
    let l = by_metric("lcp");
    assert_eq!(l["device"], "desktop");
    assert_eq!(l["metric_id"], "v5-1700000000000-1234");
    assert_eq!(l["attribution"]["target"], "#hero");
    assert_eq!(l["route"], Value::Null, "no route, path, url or Referer");
    let i = by_metric("inp");
    assert_eq!(i["device"], "mobile");
    assert_eq!(
        i["route"], "/recipes/[id]",
        "a route the client sends is kept"
    );
    let c = by_metric("cls");
    assert_eq!(c["route"], "/recipes/:id");
    assert_eq!(c["path"], "/recipes/42");
    assert_eq!(c["navigation_type"], "reload");
    let t = by_metric("ttfb");
    assert_eq!(t["route"], "/meal-plan/:id", "from the Referer");
    // Another site's Referer holds only its origin: it says nothing about the page.
    let other = json!({ "name": "FCP", "value": 800, "delta": 800, "id": "v5-x" });
    let r = client()
        .post(format!("{}{PERF}", s.url))
        .header("content-type", "text/plain")
        .header("referer", "https://app.example/")
        .body(other.to_string())
        .send()
        .unwrap();
    assert_eq!(accepted(r), 1);
    let d = s.get_json(&format!("{PERF}?range=1h&limit=10"));
    let fcp = row_where(&d["rows"], "metric", "fcp").clone();
    assert_eq!(fcp["route"], Value::Null, "{fcp}");
}

#[test]
fn rereports_and_bfcache_restores_count_once_each() {
    let s = Server::start();
    let cls = |id: &str, value: f64, delta: f64| json!({ "name": "CLS", "value": value, "delta": delta, "id": id, "navigationType": "navigate", "route": "/plan" });
    // CLS re-reported on each hide, growing; the newest value counts, once.
    accepted(beacon(&s, DESKTOP_UA, &cls("v5-a", 0.05, 0.05)));
    accepted(beacon(&s, DESKTOP_UA, &cls("v5-a", 0.12, 0.07)));
    accepted(beacon(&s, DESKTOP_UA, &cls("v5-a", 0.3, 0.18)));
    // A first report of 0 then a shift: delta equals value, the server still knows the id.
    accepted(beacon(&s, DESKTOP_UA, &cls("v5-b", 0.0, 0.0)));
    accepted(beacon(&s, DESKTOP_UA, &cls("v5-b", 0.04, 0.04)));
    // INP can go down as interactions grow; it is still the newest that counts.
    let inp = |value: f64, delta: f64| json!({ "name": "INP", "value": value, "delta": delta, "id": "v5-i", "route": "/plan" });
    accepted(beacon(&s, DESKTOP_UA, &inp(400.0, 400.0)));
    accepted(beacon(&s, DESKTOP_UA, &inp(240.0, -160.0)));
    let d = s.get_json(&format!("{PERF}?range=1h"));
    assert_eq!(d["vitals"]["cls"]["count"], 2, "{}", d["vitals"]["cls"]);
    // p75 of {0.04, 0.3}: 0.04 + 0.75 * 0.26.
    assert!(
        close(&d["vitals"]["cls"]["p75"], 0.235),
        "{}",
        d["vitals"]["cls"]
    );
    assert_eq!(d["vitals"]["inp"]["count"], 1);
    assert!(close(&d["vitals"]["inp"]["p75"], 240.0));

    // After a back/forward-cache restore the same page reports again with a new id: a
    // new page view, counted besides the first.
    let restored = json!({ "name": "CLS", "value": 0.01, "delta": 0.01, "id": "v5-c",
        "navigationType": "back-forward-cache", "route": "/plan" });
    accepted(beacon(&s, DESKTOP_UA, &restored));
    let d = s.get_json(&format!("{PERF}?range=1h"));
    assert_eq!(d["vitals"]["cls"]["count"], 3);

    // The tracker's page-view reports: report 2 replaces report 1 of the same page view.
    let pv = |report: u32, cls: f64, inp: Option<f64>| {
        json!({ "metricId": "pv-1", "report": report, "path": "/recipes/7", "lcp": 1800, "fcp": 900,
                "ttfb": 120, "cls": cls, "inp": inp, "navigationType": "navigate", "sessionId": "s1" })
    };
    accepted(beacon(&s, DESKTOP_UA, &pv(1, 0.0, None)));
    accepted(beacon(&s, DESKTOP_UA, &pv(2, 0.2, Some(500.0))));
    let d = s.get_json(&format!("{PERF}?range=1h&route=/recipes/:id"));
    assert_eq!(d["totals"]["samples"], 1, "{}", d["totals"]);
    assert_eq!(d["vitals"]["lcp"]["count"], 1);
    assert!(close(&d["vitals"]["cls"]["p75"], 0.2));
    assert!(close(&d["vitals"]["inp"]["p75"], 500.0));
    assert_eq!(d["rows"][0]["path"], "/recipes/7");
    // The overview on the dashboard counts the same way.
    let o = s.get_json("/api/overview?range=1h");
    assert_eq!(o["vitals"]["lcp"]["count"], 1);
    assert_eq!(o["vitals"]["cls"]["count"], 4);
}

#[test]
fn percentiles_shares_and_ratings_match_hand_computed_values() {
    let s = Server::start();
    // LCP 1000, 2000, ..., 10000 ms on one route, on desktops.
    let batch: Vec<Value> = (1..=10)
        .map(|i| json!({ "route": "/a", "lcp": 1000.0 * i as f64, "device": "desktop" }))
        .collect();
    assert_eq!(accepted(beacon(&s, DESKTOP_UA, &json!(batch))), 10);
    // quantile_cont over 10 sorted values: h = 9q, linear between neighbours.
    for (stat, want) in [
        ("p50", 5500.0),
        ("p75", 7750.0),
        ("p90", 9100.0),
        ("p95", 9550.0),
        ("p99", 9910.0),
    ] {
        let d = s.get_json(&format!("{PERF}?range=1h&stat={stat}"));
        assert_eq!(d["stat"], stat);
        assert!(
            close(&d["vitals"]["lcp"]["value"], want),
            "{stat}: {}",
            d["vitals"]["lcp"]
        );
    }
    let d = s.get_json(&format!("{PERF}?range=1h"));
    let lcp = &d["vitals"]["lcp"];
    // Good (<= 2500): 1000, 2000. Poor (> 4000): 5000..10000. The rest: 3000, 4000.
    assert!(close(&lcp["good_share"], 0.2));
    assert!(close(&lcp["needs_improvement_share"], 0.2));
    assert!(close(&lcp["poor_share"], 0.6));
    assert_eq!(lcp["rating"], "poor", "p75 7750 > 4000");

    // Histogram bins are (from, to]: a value on a threshold is rated as the threshold says.
    let h = s.get_json("/api/analytics/performance/histogram?range=1h&metric=lcp");
    assert_eq!(h["count"], 10);
    let bins = h["bins"].as_array().unwrap();
    let bin_of = |v: f64| {
        bins.iter()
            .position(|b| {
                b["from"].as_f64().unwrap() < v && b["to"].as_f64().is_none_or(|t| v <= t)
            })
            .unwrap()
    };
    assert_eq!(bins[bin_of(1000.0)]["count"], 1);
    assert_eq!(bins[bin_of(1000.0)]["rating"], "good");
    assert_eq!(bins[bin_of(4000.0)]["rating"], "needs-improvement");
    assert_eq!(
        bins.last().unwrap()["count"],
        5,
        "6000 and up fall in the last bin"
    );
    assert_eq!(bins.last().unwrap()["rating"], "poor");
    let s2 = Server::start();
    accepted(beacon(
        &s2,
        DESKTOP_UA,
        &json!({ "lcp": 2500, "route": "/" }),
    ));
    let h = s2.get_json("/api/analytics/performance/histogram?range=1h&metric=LCP");
    let edge = h["bins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["count"] == 1)
        .unwrap()
        .clone();
    assert_eq!(
        (
            edge["from"].clone(),
            edge["to"].clone(),
            edge["rating"].clone()
        ),
        (json!(2250.0), json!(2500.0), json!("good"))
    );
}

#[test]
fn score_and_opportunity_per_route_and_device() {
    let s = Server::start();
    // /slow on desktops: LCP at the desktop median (2400 ms) scores 0.5, so 50.
    // /fast on phones: LCP at the mobile p10 (2500 ms) scores 0.9, so 90.
    let mut batch: Vec<Value> = (0..3)
        .map(|_| json!({ "path": "/slow", "lcp": 2400, "device": "desktop" }))
        .collect();
    batch.push(json!({ "path": "/fast", "lcp": 2500 }));
    accepted(beacon(&s, DESKTOP_UA, &json!(&batch[..3])));
    accepted(beacon(&s, PHONE_UA, &json!(&batch[3..])));
    let d = s.get_json("/api/analytics/performance/routes?range=1h");
    let groups = d["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let (slow, fast) = (&groups[0], &groups[1]);
    assert_eq!(
        (slow["route"].clone(), slow["device"].clone()),
        (json!("/slow"), json!("desktop"))
    );
    assert_eq!(
        (fast["route"].clone(), fast["device"].clone()),
        (json!("/fast"), json!("mobile"))
    );
    assert_eq!(slow["views"], 3);
    assert!(close(&slow["score"], 50.0), "{}", slow["score"]);
    assert!(close(&fast["score"], 90.0), "{}", fast["score"]);
    // Site: (3 * 50 + 1 * 90) / 4 = 60; fixing /slow gains 3/4 * 50, /fast 1/4 * 10.
    assert!(close(&d["score"], 60.0), "{}", d["score"]);
    assert!(close(&slow["opportunity"], 37.5));
    assert!(close(&fast["opportunity"], 2.5));
    assert!(close(&slow["vitals"]["lcp"]["p75"], 2400.0));
    let summary = s.get_json(&format!("{PERF}?range=1h"));
    assert!(close(&summary["score"], 60.0));
    // Filters: one device.
    let d = s.get_json("/api/analytics/performance/routes?range=1h&device=mobile");
    assert_eq!(d["groups"].as_array().unwrap().len(), 1);
    assert!(close(&d["score"], 90.0));
}

#[test]
fn routes_are_templated_unless_sent() {
    let s = Server::start();
    let batch = json!([
        { "path": "/recipes/123", "lcp": 1000 },
        { "url": "https://app.example/recipes/456?ref=a#x", "lcp": 2000 },
        { "path": "/users/3f2b1c9e-8d4a-4b6e-9f1a-2c3d4e5f6a7b/plan", "lcp": 1000 },
        { "route": "/recipes/[slug]", "path": "/recipes/lemon-chicken", "lcp": 3000 },
    ]);
    accepted(beacon(&s, DESKTOP_UA, &batch));
    let d = s.get_json(&format!("{PERF}?range=1h"));
    let mut routes: Vec<(String, u64)> = d["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["route"].as_str().unwrap().to_string(),
                r["samples"].as_u64().unwrap(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("/recipes/:id".to_string(), 2),
            ("/recipes/[slug]".to_string(), 1),
            ("/users/:id/plan".to_string(), 1)
        ]
    );
}

#[test]
fn bad_payloads_are_refused_clearly() {
    let s = Server::start();
    let cases: &[(Value, &str, &str)] = &[
        // JSON.stringify(NaN) is null.
        (
            json!({ "name": "LCP", "value": null, "id": "x" }),
            "value",
            "finite",
        ),
        (
            json!({ "name": "LCP", "value": "NaN", "id": "x" }),
            "value",
            "invalid",
        ),
        (
            json!({ "name": "INP", "value": -3, "id": "x" }),
            "value",
            ">= 0",
        ),
        (
            json!({ "name": "CLS", "value": -0.1, "id": "x" }),
            "value",
            ">= 0",
        ),
        (
            json!({ "name": "FID2", "value": 12, "id": "x" }),
            "name",
            "not a web vital",
        ),
        (
            json!({ "name": "LCP", "value": 1, "rating": "great" }),
            "rating",
            "good",
        ),
        (
            json!({ "name": "LCP", "value": 1, "delta": "x" }),
            "delta",
            "invalid",
        ),
        (
            json!({ "name": "LCP", "value": 1, "attribution": [1] }),
            "attribution",
            "object",
        ),
        (json!({ "lcp": 100, "device": "phone" }), "device", "mobile"),
        (json!({ "lcp": 100, "report": 0 }), "report", "from 1"),
        (json!({ "lcp": -1 }), "lcp", ">= 0"),
    ];
    for (body, field, words) in cases {
        let e = error_of(beacon(&s, DESKTOP_UA, body), 422);
        assert_eq!(e["field"], *field, "{body}: {e}");
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(words), "{body}: {msg}");
    }
    // One bad item in a batch writes nothing, and the error names it.
    let batch = json!([
        { "name": "LCP", "value": 1200, "id": "ok-1" },
        { "name": "FOO", "value": 1, "id": "bad" },
    ]);
    let e = error_of(beacon(&s, DESKTOP_UA, &batch), 422);
    assert_eq!(
        (e["index"].clone(), e["field"].clone()),
        (json!(1), json!("name"))
    );
    assert_eq!(
        s.get_json(&format!("{PERF}?range=1h"))["totals"]["samples"],
        0
    );
    // Bad read parameters are 400s.
    for (q, param) in [
        ("?stat=p42", "stat"),
        ("/histogram?metric=speed", "metric"),
        ("/routes?device=fridge", "device"),
    ] {
        let e = error_of(s.get(&format!("{PERF}{q}")), 400);
        assert!(e["message"].as_str().unwrap().contains(param), "{q}: {e}");
    }
}

#[test]
fn tracker_is_served_small_and_cacheable() {
    let s = Server::start();
    let r = client().get(format!("{}/gs.js", s.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.contains("javascript"), "{ct}");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(r.headers()["cross-origin-resource-policy"], "cross-origin");
    let js = r.text().unwrap();
    assert!(js.contains("sendBeacon") && js.contains("keepalive"));
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(js.as_bytes()).unwrap();
    }
    assert!(
        out.len() <= 2560,
        "gs.js is {} bytes brotli-compressed; the budget is 2.5 KB",
        out.len()
    );
}

#[test]
fn tracker_is_served_with_the_performance_settings() {
    let s = Server::start_env(&[
        ("GROWTH_PERFORMANCE_BATCH_SIZE", "25"),
        ("GROWTH_PERFORMANCE_FLUSH_INTERVAL", "1500"),
        ("GROWTH_PERFORMANCE_ENABLE_WEB_VITALS", "false"),
    ]);
    let plain = client().get(format!("{}/gs.js", s.url)).send().unwrap();
    assert_eq!(plain.status(), 200);
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let js = plain.text().unwrap();
    for setting in [
        r#""batch-size":25"#,
        r#""flush-interval":1500"#,
        r#""web-vitals":false"#,
        r#""custom-metrics":true"#,
    ] {
        assert!(js.contains(setting), "{setting} not in the served gs.js");
    }
    // The brotli copy is the same script, under the same ETag, and revalidates.
    let br = client()
        .get(format!("{}/gs.js", s.url))
        .header("accept-encoding", "br")
        .send()
        .unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["etag"].to_str().unwrap(), etag);
    let mut unpacked = Vec::new();
    brotli::BrotliDecompress(&mut br.bytes(), &mut unpacked).unwrap();
    assert_eq!(String::from_utf8(unpacked).unwrap(), js);
    let again = client()
        .get(format!("{}/gs.js", s.url))
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
    // Another server with the default settings serves another script, so another ETag.
    let default = Server::start();
    let other = client()
        .get(format!("{}/gs.js", default.url))
        .send()
        .unwrap();
    assert_ne!(other.headers()["etag"].to_str().unwrap(), etag);
    assert!(other.text().unwrap().contains(r#""batch-size":10"#));
}

#[test]
fn tracker_in_a_real_browser() {
    let Some(chromium) = chromium_for("tracker_in_a_real_browser") else {
        return;
    };
    let key = "browser-ingest-key-0123456789";
    let s = Server::start_with(&["--ingest-key", key]);
    let stdout = run_browser_script("vitals.mjs", &chromium, &[s.url.as_ref(), key.as_ref()]);
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .expect("a RESULT line");

    let second = result["second_handler_ms"].as_f64();
    let restored = result["restored"].as_bool() == Some(true);
    // Beacons are sent on hide; the last may land a moment after the browser closed.
    let start = Instant::now();
    let (row, rows) = loop {
        let d = s.get_json(&format!("{PERF}?range=1h"));
        let rows = d["rows"].as_array().cloned().unwrap_or_default();
        let first = rows
            .iter()
            .find(|r| r["path"] == "/" && r["navigation_type"] == "navigate")
            .cloned();
        let settled = first
            .as_ref()
            .is_some_and(|f| second.is_none_or(|ms| f["inp"].as_f64().is_some_and(|inp| inp > ms)))
            && (!restored
                || rows
                    .iter()
                    .any(|r| r["navigation_type"] == "back-forward-cache"));
        if let (true, Some(first)) = (settled, first) {
            break (first, rows);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "vitals not stored as expected: {d}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let num = |k: &str| {
        row[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} not stored: {row}"))
    };
    let delay = result["image_delay_ms"].as_f64().unwrap();
    assert!(
        num("lcp") >= delay,
        "LCP {} before the image arrived ({delay} ms)",
        num("lcp")
    );
    assert!(num("fcp") > 0.0 && num("fcp") <= num("lcp"), "{row}");
    assert!(num("ttfb") >= 0.0 && num("ttfb") <= num("fcp"), "{row}");
    // CLS is the larger session window: the first shift, not the sum of both.
    let shifts: Vec<f64> = result["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let expected = shifts.iter().cloned().fold(0.0, f64::max);
    assert_eq!(shifts.len(), 2);
    assert!(
        (num("cls") - expected).abs() <= 0.1 * expected,
        "CLS {} vs the page's shift {expected}",
        num("cls")
    );
    let handler = result["handler_ms"].as_f64().unwrap();
    assert!(
        num("inp") > handler,
        "INP {} not above the handler's {handler} ms",
        num("inp")
    );
    // Shown again, clicked with a slower handler, hidden again: the page view's second
    // report replaced the first instead of adding a sample.
    assert_eq!(
        rows.iter()
            .filter(|r| r["metric_id"] == row["metric_id"])
            .count(),
        1,
        "{rows:?}"
    );
    if restored {
        // Back from the back/forward cache: a new metric instance, timed from the restore.
        let bf = rows
            .iter()
            .find(|r| r["navigation_type"] == "back-forward-cache")
            .unwrap();
        assert_ne!(bf["metric_id"], row["metric_id"]);
        assert_eq!(bf["ttfb"], 0.0);
        assert!(bf["lcp"].as_f64().unwrap() > 0.0, "{bf}");
        assert_eq!(
            bf["route"], "/recipes/:id",
            "the page's URL after pushState"
        );
    }
    assert_eq!(row["route"], "/");
    assert_eq!(row["device"], "desktop");
    assert_eq!(row["navigation_type"], "navigate");
    assert!(
        row["metric_id"].is_string() && row["session_id"].is_string(),
        "{row}"
    );

    // Page views (SPA route change included), the custom event and the conversion, with
    // the same session; a vitals report is not a page view.
    let events = s.get_json("/api/analytics/events?range=1h");
    let rows = events["rows"].as_array().unwrap();
    let pageviews: Vec<&Value> = rows.iter().filter(|r| r["event"] == "pageview").collect();
    // "/", the pushState route, and the page navigated to; a restore from the
    // back/forward cache is no new page view, a reload after going back would be.
    let expected = if second.is_none() {
        2
    } else if restored {
        3
    } else {
        4
    };
    assert_eq!(pageviews.len(), expected, "{events}");
    let spa = pageviews
        .iter()
        .find(|r| r["route"] == "/recipes/123")
        .expect("SPA page view");
    assert_eq!(spa["properties"]["utm_source"], "newsletter");
    assert!(spa["referrer"].as_str().unwrap().ends_with('/'), "{spa}");
    assert!(spa["user_id"].is_null());
    let saved = rows
        .iter()
        .find(|r| r["event"] == "recipe_saved")
        .expect("tracked event");
    assert_eq!(saved["properties"]["recipeId"], "r1");
    assert_eq!(saved["session_id"], row["session_id"]);
    let conv = s.get_json("/api/analytics/conversions?range=1h");
    assert_eq!(conv["rows"][0]["funnel"], "Recipe Discovery");
    assert_eq!(conv["rows"][0]["step"], "recipe_saved");
}

#[test]
fn long_windows_read_the_rollup_within_two_percent() {
    // Every read over more than 0 samples uses the roll-up; it runs every second.
    let s = Server::start_env(&[
        ("GROWTH_PERFORMANCE_EXACT_MAX_SAMPLES", "0"),
        ("GROWTH_PERFORMANCE_ROLLUP_INTERVAL", "1"),
    ]);
    let ago = |h: i64| (chrono::Utc::now() - chrono::Duration::hours(h)).to_rfc3339();
    // Hours that have ended: LCP 1000..=20000 on /a (desktop), 3 h ago.
    let mut batch: Vec<Value> = (1..=20)
        .map(|i| json!({ "route": "/a", "lcp": 1000.0 * i as f64, "device": "desktop", "created_at": ago(3) }))
        .collect();
    // A page view reported 3 h ago and again 2 h ago: the second replaces the first,
    // across two rolled-up hours.
    let pv = |report: u32, cls: f64, h: i64| json!({ "metricId": "pv-x", "report": report, "route": "/b", "cls": cls, "device": "mobile", "created_at": ago(h) });
    batch.push(pv(1, 0.05, 3));
    batch.push(pv(2, 0.4, 2));
    // And one fresh sample, read from the rows.
    batch.push(json!({ "route": "/a", "lcp": 21000, "device": "desktop" }));
    // One request is one commit, so the roll-up sees all of it or none.
    accepted(beacon(&s, DESKTOP_UA, &json!(batch)));

    // The summary's trend has one point per day once reads use the roll-up.
    let start = Instant::now();
    while s.get_json(&format!("{PERF}?range=24h"))["bucket_seconds"] != 86_400 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "reads never used the roll-up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = s.get_json("/api/analytics/performance/routes?range=24h");
    let groups = d["groups"].as_array().unwrap();
    let a = groups.iter().find(|g| g["route"] == "/a").unwrap();
    let lcp = &a["vitals"]["lcp"];
    // Exact p75 of 1000..=21000 step 1000 is 16000; the roll-up is within 2%.
    let p75 = lcp["p75"].as_f64().unwrap();
    assert!((p75 - 16000.0).abs() / 16000.0 <= 0.02, "{p75}");
    // Shares are exact: good 1000, 2000; needs improvement 3000, 4000.
    assert!(close(&lcp["good_share"], 2.0 / 21.0));
    assert!(close(&lcp["poor_share"], 17.0 / 21.0));
    let b = groups.iter().find(|g| g["route"] == "/b").unwrap();
    assert_eq!(
        b["vitals"]["cls"]["count"], 1,
        "the re-report replaced its first report: {b}"
    );
    let cls = b["vitals"]["cls"]["p75"].as_f64().unwrap();
    assert!((cls - 0.4).abs() / 0.4 <= 0.02, "{cls}");
    // The summary and the histogram read the roll-up too.
    let sum = s.get_json(&format!("{PERF}?range=24h"));
    assert_eq!(sum["vitals"]["lcp"]["count"], 21);
    assert_eq!(sum["vitals"]["cls"]["count"], 1);
    let h = s.get_json("/api/analytics/performance/histogram?range=24h&metric=lcp");
    assert_eq!(h["count"], 21);
}

#[test]
fn the_duckdb_view_keeps_the_newest_report_too() {
    let temp = tempfile::tempdir().unwrap();
    let s = Server::start_in(temp.path(), &[], &[]);
    let cls = |value: f64, delta: f64| json!({ "name": "CLS", "value": value, "delta": delta, "id": "v5-v", "route": "/v" });
    accepted(beacon(&s, DESKTOP_UA, &cls(0.1, 0.1)));
    accepted(beacon(&s, DESKTOP_UA, &cls(0.3, 0.2)));
    accepted(beacon(
        &s,
        DESKTOP_UA,
        &json!({ "route": "/v", "lcp": 900 }),
    ));
    assert!(s.terminate().success());
    let conn = duckdb::Connection::open(temp.path().join("data/growth.duckdb")).unwrap();
    let (raw, latest, cls): (i64, i64, f64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM performance_metrics), count(*), max(cls) FROM performance_latest",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((raw, latest), (3, 2));
    assert_eq!(cls, 0.3);
}

/// Yesterday's window, as `from`/`to`, and today's so far.
fn day_windows() -> (String, String, i64) {
    let today = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let yesterday = today - chrono::Duration::days(1);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (
        format!("from={}&to={}", fmt(yesterday), fmt(today)),
        format!("from={}", fmt(today)),
        (yesterday + chrono::Duration::hours(12)).timestamp_millis(),
    )
}

#[test]
fn a_page_view_timed_yesterday_lands_in_yesterdays_window() {
    let s = Server::start();
    let (yesterday, today, noon) = day_windows();
    // Sent now, viewed yesterday by the client's clock (no sent_at: taken as it is).
    let pv = json!({ "route": "/late", "lcp": 1800, "device": "desktop", "timestamp": noon });
    assert_eq!(accepted(beacon(&s, DESKTOP_UA, &pv)), 1);
    let d = s.get_json(&format!("{PERF}?{yesterday}"));
    assert_eq!(d["vitals"]["lcp"]["count"], 1, "{}", d["vitals"]);
    assert_eq!(d["rows"][0]["route"], "/late");
    assert_eq!(d["series"].as_array().unwrap().len(), 1);
    for read in [
        format!("{PERF}?{today}"),
        format!("{PERF}?range=1h"),
        format!("{PERF}/routes?{today}"),
    ] {
        let d = s.get_json(&read);
        let n = &d["vitals"]["lcp"]["count"];
        assert!(n == 0 || n.is_null(), "{read}: {d}");
    }
    let h = s.get_json(&format!("{PERF}/histogram?{yesterday}&metric=lcp"));
    assert_eq!(h["count"], 1);

    // The roll-up buckets its days by the same event time: received 2 h ago (an hour
    // it has rolled up), viewed yesterday.
    let s = Server::start_env(&[
        ("GROWTH_PERFORMANCE_EXACT_MAX_SAMPLES", "0"),
        ("GROWTH_PERFORMANCE_ROLLUP_INTERVAL", "1"),
    ]);
    let ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let pv = json!({ "route": "/late", "lcp": 1800, "device": "desktop", "timestamp": noon, "created_at": ago });
    assert_eq!(accepted(beacon(&s, DESKTOP_UA, &pv)), 1);
    let start = Instant::now();
    let d = loop {
        let d = s.get_json(&format!("{PERF}?{yesterday}"));
        if d["bucket_seconds"] == 86_400 {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "reads never used the roll-up: {d}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(d["vitals"]["lcp"]["count"], 1, "{}", d["vitals"]);
    assert_eq!(d["series"].as_array().unwrap().len(), 1);
    let g = s.get_json(&format!("{PERF}/routes?{yesterday}"));
    assert_eq!(g["groups"][0]["route"], "/late", "{g}");
    let d = s.get_json(&format!("{PERF}?{today}"));
    let n = &d["vitals"]["lcp"]["count"];
    assert!(n == 0 || n.is_null(), "{d}");
}
