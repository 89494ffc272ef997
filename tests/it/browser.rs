//! The dashboard in headless Chromium: login, every page renders its charts without console
//! errors, the range switch changes the numbers, logout locks the API. Screenshots land in
//! `target/screenshots/`. Driven by `tests/browser/dashboard.mjs` (puppeteer-core).

use std::path::Path;
use std::process::Command;

use crate::helpers::{bin, Server, TOKEN};

#[test]
fn dashboard_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/dashboard.mjs");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists()
        && root
            .join("tests/browser/node_modules/puppeteer-core")
            .exists();
    if !ready {
        // CI installs both (see .ci/run); a developer machine may not have them.
        assert!(
            std::env::var_os("CI").is_none(),
            "browser test needs {chromium} and `npm ci` in tests/browser"
        );
        eprintln!("SKIPPED dashboard_in_a_real_browser: run `bash .ci/run` or install chromium and `npm ci --prefix tests/browser`");
        return;
    }
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
