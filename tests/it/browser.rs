//! The dashboard in headless Chromium: login, every page renders its charts without console
//! errors, the range switch changes the numbers, logout locks the API. Screenshots land in
//! `target/screenshots/`. Driven by `tests/browser/dashboard.mjs` (puppeteer-core). And the
//! tracker's settings, from the server and from the tag (`tests/browser/settings.mjs`).

use std::path::Path;

use serde_json::Value;

use crate::helpers::{chromium_for, demo_into, run_browser_script, Server, TOKEN};

#[test]
fn dashboard_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium_for("dashboard_in_a_real_browser") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    demo_into(temp.path(), 20_000, 30);
    let s = Server::start_in(temp.path(), &[], &[]);
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    run_browser_script(
        "dashboard.mjs",
        &chromium,
        &[s.url.as_ref(), TOKEN.as_ref(), shots.as_os_str()],
    );
}

/// The tracker's `[performance]` settings reach the script as served, and a tag's `data-`
/// attributes override them per site (`tests/browser/settings.mjs` says what each page does).
#[test]
fn tracker_settings_in_a_real_browser() {
    let Some(chromium) = chromium_for("tracker_settings_in_a_real_browser") else {
        return;
    };
    let s = Server::start_env(&[
        ("GROWTH_PERFORMANCE_BATCH_SIZE", "3"),
        ("GROWTH_PERFORMANCE_FLUSH_INTERVAL", "600000"),
        ("GROWTH_PERFORMANCE_ENABLE_CUSTOM_METRICS", "false"),
    ]);
    run_browser_script("settings.mjs", &chromium, &[s.url.as_ref()]);

    // What the server stored, by page. Beacons sent on hide may land a moment late.
    let rows = |path: &str| -> Vec<Value> {
        let d = s.get_json("/api/analytics/performance?range=1h");
        d["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == path)
            .cloned()
            .collect()
    };
    let mut patience = 100;
    while (rows("/configured").is_empty() || rows("/override").is_empty()) && patience > 0 {
        patience -= 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let configured = rows("/configured");
    let row = configured
        .first()
        .expect("a vitals report from /configured");
    // The server turned the custom metrics off; the Core Web Vitals stayed on.
    assert!(row["fcp"].is_null() && row["ttfb"].is_null(), "{row}");
    assert!(!row["lcp"].is_null() || !row["cls"].is_null(), "{row}");
    let overridden = rows("/override");
    let row = overridden.first().expect("a vitals report from /override");
    // data-web-vitals="false" data-custom-metrics="true": the reverse.
    assert!(!row["ttfb"].is_null() || !row["fcp"].is_null(), "{row}");
    for vital in ["lcp", "cls", "inp", "fid"] {
        assert!(
            row[vital].is_null(),
            "{vital} sent with data-web-vitals=\"false\": {row}"
        );
    }
    assert!(rows("/off").is_empty(), "no report when both kinds are off");

    let events = s.get_json("/api/analytics/events?range=1h");
    let names: Vec<&str> = events["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"].as_str())
        .collect();
    for name in ["first", "second"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(names.iter().filter(|n| **n == "pageview").count(), 3);
}

/// A JavaScript error thrown on a page with gs.js reaches the Performance page (and the
/// Alerts page renders). Driven by `tests/browser/errors.mjs`.
#[test]
fn js_error_reaches_the_performance_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium_for("js_error_reaches_the_performance_page") else {
        return;
    };
    let s = Server::start();
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let stdout = run_browser_script(
        "errors.mjs",
        &chromium,
        &[s.url.as_ref(), TOKEN.as_ref(), shots.as_os_str()],
    );
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .expect("a RESULT line");
    // Thrown twice, reported once; the rejection once.
    assert_eq!(result["js_errors"], 2, "{result}");
}
