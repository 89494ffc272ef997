//! The dashboard in headless Chromium: login, every page renders its charts without console
//! errors, the range switch changes the numbers, logout locks the API. Screenshots land in
//! `target/screenshots/`. Driven by `tests/browser/dashboard.mjs` (puppeteer-core).

use std::path::Path;
use std::process::Command;

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
    let out = Command::new("node")
        .arg(root.join("tests/browser/errors.mjs"))
        .arg(&s.url)
        .arg(TOKEN)
        .arg(&shots)
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
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .expect("a RESULT line");
    // Thrown twice, reported once; the rejection once.
    assert_eq!(result["js_errors"], 2, "{result}");
}
