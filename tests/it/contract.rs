//! The API contract: a property-based fuzzer (schemathesis) drives the running binary from
//! its own `/api/openapi.json` and fails on any 5xx, any schema-valid request refused, any
//! schema-violating request accepted, any undocumented status code or a response that
//! does not match its schema.
//!
//! Needs schemathesis; `.ci/run` installs it into the test venv and passes its path as
//! `GROWTH_TEST_SCHEMATHESIS`. Without it the test is skipped on a developer machine and
//! fails under CI.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{Server, TOKEN};

const GATEWAY_KEY: &str = "gsk_contract_test_key_0123456789";

/// Examples per operation and phase: enough to cross every enum, bound and shape, small
/// enough that the run takes about a minute on two cores.
const MAX_EXAMPLES: &str = "40";

fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GROWTH_TEST_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/growth-stack/venv/bin/schemathesis");
    p.exists().then_some(p)
}

#[test]
fn the_server_keeps_its_openapi_contract() {
    let Some(fuzzer) = schemathesis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the contract test needs schemathesis (GROWTH_TEST_SCHEMATHESIS); .ci/run installs it"
        );
        eprintln!("SKIPPED contract: run `bash .ci/run` or pip install schemathesis");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // No LLM provider is configured (the helper clears OPENAI_* and ANTHROPIC_*), so the
    // gateway's calls reach only the built-in demo provider. Limits stay on: 429 is part
    // of the contract, but the fuzzer should mostly see the handlers.
    let s = Server::start_in(
        dir.path(),
        &["--rate-limit", "0"],
        &[
            ("GROWTH_GATEWAY_KEYS", GATEWAY_KEY),
            ("GROWTH_AI_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    );
    // Some rows, so the reads have something to aggregate.
    for (path, body) in [
        (
            "/api/analytics/events",
            r#"[{"event":"signup","user_id":"u1"},{"event":"open","user_id":"u1","properties":{"plan":"pro"}}]"#,
        ),
        (
            "/api/analytics/conversions",
            r#"[{"funnel":"f","step":"a","user_id":"u1"},{"funnel":"f","step":"b","user_id":"u1"}]"#,
        ),
        (
            "/api/analytics/performance",
            r#"{"route":"/","lcp":1200,"cls":0.05}"#,
        ),
        (
            "/api/analytics/ai-performance",
            r#"{"model":"m","duration":320}"#,
        ),
        (
            "/api/analytics/database-performance",
            r#"{"query":"SELECT 1","duration":3}"#,
        ),
        (
            "/api/analytics/system",
            r#"[{"instance":"web-1","cpu":90,"memory":40},{"instance":"web-2","cpu":85}]"#,
        ),
    ] {
        assert_eq!(s.post(path, body).status(), 200, "{path}");
    }
    let doc: Value = s.public_json("/api/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");

    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[auth.openapi.admin]\nbearer = \"{TOKEN}\"\n\n\
             [auth.openapi.gatewayKey]\nbearer = \"{GATEWAY_KEY}\"\n\n\
             [auth.openapi.gatewayApiKey]\napi_key = \"{GATEWAY_KEY}\"\n"
        ),
    )
    .unwrap();
    let seed = std::env::var("GROWTH_CONTRACT_SEED").unwrap_or_else(|_| "20261201".into());
    let out = Command::new(&fuzzer)
        .current_dir(dir.path())
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/api/openapi.json", s.url)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,\
             positive_data_acceptance,negative_data_rejection",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            &seed,
            // One worker: with two, Python 3.11's `ast` module (hypothesis parses lambdas
            // to describe them) can race between threads and abort a run with "AST
            // constructor recursion depth mismatch", a tool crash that says nothing of us.
            "--workers",
            "1",
            "--generation-database",
            "none",
            // How fast examples are generated is not part of the contract, and on a
            // loaded CI machine the time-based health check fails runs that found nothing.
            "--suppress-health-check",
            "too_slow",
            "--request-timeout",
            "30",
            "--max-failures",
            "50",
        ])
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found contract failures (seed {seed}):\n{stdout}\n{stderr}"
    );
    // The run must have tested something: every path of the document.
    assert!(
        stdout.contains("passed") || stdout.contains("Passed"),
        "{stdout}"
    );
}
