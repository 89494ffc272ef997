//! The dashboard in headless Chromium: login, every page renders its charts without console
//! errors, the range switch changes the numbers, logout locks the API. Screenshots land in
//! `target/screenshots/`. Driven by `tests/browser/dashboard.mjs` (puppeteer-core). And the
//! tracker's settings, from the server and from the tag (`tests/browser/settings.mjs`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{bin, chromium_for, Server, TOKEN};

#[test]
fn dashboard_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/dashboard.mjs");
    let Some(chromium) = chromium_for("dashboard_in_a_real_browser") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let demo = bin()
        .args(["demo", "--events", "20000", "--days", "30", "--data-dir"])
        .arg(temp.path().join("data"))
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let s = Server::start_in(temp.path(), &[], &[]);
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(&s.url)
        .arg(TOKEN)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
}

/// The tracker's `[performance]` settings reach the script as served, and a tag's `data-`
/// attributes override them per site (`tests/browser/settings.mjs` says what each page does).
#[test]
fn tracker_settings_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = chromium_for("tracker_settings_in_a_real_browser") else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        temp.path(),
        &[],
        &[
            ("GROWTH_PERFORMANCE_BATCH_SIZE", "3"),
            ("GROWTH_PERFORMANCE_FLUSH_INTERVAL", "600000"),
            ("GROWTH_PERFORMANCE_ENABLE_CUSTOM_METRICS", "false"),
        ],
    );
    let out = Command::new("node")
        .arg(root.join("tests/browser/settings.mjs"))
        .arg(&s.url)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser part failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
