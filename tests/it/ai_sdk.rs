//! The official `openai` and `anthropic` Python SDKs drive the gateway (plain and streamed
//! calls, cache hits, RateLimitError). `.ci/run` installs them in a venv; elsewhere the
//! test is skipped with a message unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ai_mock::Mock;
use crate::helpers::{python_with, Server};

const KEY: &str = "sdk-gateway-key-0123456789";

fn python() -> Option<PathBuf> {
    python_with("openai, anthropic")
}

#[test]
fn official_sdks_work_through_the_gateway() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the SDK test needs Python with openai and anthropic (see .ci/run)"
        );
        eprintln!(
            "SKIPPED official_sdks_work_through_the_gateway: no Python with openai and anthropic; \
             run `bash .ci/run` or set GROWTH_TEST_PYTHON"
        );
        return;
    };
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = mock.env();
    env.push(("GROWTH_GATEWAY_KEYS".into(), KEY.into()));
    env.push(("GROWTH_AI_RATE_LIMIT_PER_MINUTE".into(), "5".into()));
    env.push(("GROWTH_AI_MAX_RETRIES".into(), "1".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_in(dir.path(), &[], &env);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ai/sdk_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("GS_BASE", &s.url)
        .env("GS_KEY", KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SDK checks passed"), "{stdout}");
    assert_eq!(
        mock.calls("gpt-mock"),
        3,
        "plain, stream and the rate-limit prompt went upstream once each"
    );
}
