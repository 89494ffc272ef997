//! Spawns the real `growth-stack` binary on a free loopback port with its own data dir.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub const TOKEN: &str = "test-admin-token-0123456789";

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_growth-stack"));
    // Nothing from the developer's shell may leak into a test's config.
    for (k, _) in std::env::vars() {
        if k.starts_with("GROWTH_") || k.starts_with("OPENAI_") || k.starts_with("ANTHROPIC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

pub struct Server {
    child: Child,
    pub url: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh data dir and the test admin token.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        Self::start_fresh(args, &[])
    }

    /// A fresh data dir, the test admin token and these environment settings.
    pub fn start_env(env: &[(&str, &str)]) -> Server {
        Self::start_fresh(&[], env)
    }

    fn start_fresh(args: &[&str], env: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let mut s = Self::start_in(temp.path(), args, env);
        s._temp = Some(temp);
        s
    }

    /// Starts on `dir` (which may hold data from an earlier run).
    pub fn start_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = bin();
        cmd.current_dir(dir)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !args.contains(&"--no-auth") && !env.iter().any(|(k, _)| *k == "GROWTH_ADMIN_TOKEN") {
            cmd.args(["--admin-token", TOKEN]);
        }
        let mut child = cmd.spawn().expect("spawn growth-stack");
        let out = child.stdout.take().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("growth-stack listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not print its address");
        let server = Server {
            child,
            url,
            stdout,
            _temp: None,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = client().get(format!("{}/readyz", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server never became ready");
    }

    /// What the server printed so far, once a line containing `needle` is there: stdout is
    /// read by a thread, so lines after the banner may arrive after `start` returns.
    pub fn stdout_once(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let printed = self.stdout.lock().unwrap().join("\n");
            if printed.contains(needle) || std::time::Instant::now() > deadline {
                return printed;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path, &body.to_string())
    }

    pub fn get(&self, path: &str) -> Response {
        client()
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
    }

    /// A public GET (no token): its JSON body, after checking it answered 200.
    pub fn public_json(&self, path: &str) -> Value {
        let r = client().get(format!("{}{path}", self.url)).send().unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    pub fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small blocking HTTP client for tests (ureq underneath; statuses are data, not errors).
pub struct Client {
    agent: ureq::Agent,
}

pub fn client() -> Client {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    Client {
        agent: config.into(),
    }
}

impl Client {
    pub fn get(&self, url: impl Into<String>) -> Req {
        self.request("GET", url)
    }
    pub fn post(&self, url: impl Into<String>) -> Req {
        self.request("POST", url)
    }
    pub fn delete(&self, url: impl Into<String>) -> Req {
        self.request("DELETE", url)
    }
    pub fn request(&self, method: &str, url: impl Into<String>) -> Req {
        Req {
            agent: self.agent.clone(),
            method: method.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

pub struct Req {
    agent: ureq::Agent,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.headers
            .push((name.to_string(), value.as_ref().to_string()));
        self
    }
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }
    pub fn send(self) -> Result<Response, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&self.url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req.body(self.body).expect("valid request");
        let mut resp = self.agent.run(req)?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()?;
        Ok(Response {
            status: Status(resp.status().as_u16()),
            headers: resp.headers().clone(),
            body,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.0)
    }
    pub fn as_u16(&self) -> u16 {
        self.0
    }
}

impl PartialEq<u16> for Status {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub struct Response {
    status: Status,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn headers(&self) -> &ureq::http::HeaderMap {
        &self.headers
    }
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
    pub fn text(&self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.body.clone())
    }
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }
}

/// The error envelope of a response, asserting its status.
pub fn error_of(resp: Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

/// The Chromium binary for a browser test, or `None` (after saying so) when Chromium or
/// puppeteer-core is missing on a developer machine; under CI (which installs both, see
/// `.ci/run`) a missing one fails the test instead of skipping it.
pub fn chromium_for(test: &str) -> Option<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = std::path::Path::new(&chromium).exists()
        && root
            .join("tests/browser/node_modules/puppeteer-core")
            .exists();
    if ready {
        return Some(chromium);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "browser test needs {chromium} and `npm ci` in tests/browser"
    );
    eprintln!("SKIPPED {test}: run `bash .ci/run` or install chromium and `npm ci --prefix tests/browser`");
    None
}

/// Runs `tests/browser/<script>` under node with `args`, in `chromium`, and returns what it
/// printed; a failing browser part fails the test with its output.
pub fn run_browser_script(script: &str, chromium: &str, args: &[&std::ffi::OsStr]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .args(args)
        .env("CHROMIUM", chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser part of {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The element of the JSON array `list` whose `key` is `value`; panics, showing the list, when none is.
pub fn row_where<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == value))
        .unwrap_or_else(|| panic!("no row with {key} = {value:?} in {list}"))
}

/// A free loopback port nobody listens on yet (so a server can start there later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// People per step of `POST /api/analytics/funnels` with `body`.
pub fn funnel_step_users(s: &Server, body: &Value) -> Vec<u64> {
    let r = client()
        .post(format!("{}/api/analytics/funnels", s.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{body}");
    let f: Value = r.json().unwrap();
    f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect()
}

/// `out` of a command that must have succeeded; its stderr when it did not.
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A one-thread store for tests that open the store directly, taking `rows` per commit.
pub fn store_options(rows: usize) -> growth_stack::store::StoreOptions {
    growth_stack::store::StoreOptions {
        memory_limit: "256MB".into(),
        threads: 1,
        queue_rows: rows,
        max_commit_rows: rows,
        read_connections: 1,
        wal_checkpoint: "16MB".into(),
    }
}

/// Fills `dir/data` with the demo's `events` events over `days` days.
pub fn demo_into(dir: &Path, events: u32, days: u32) {
    succeeded(
        bin()
            .current_dir(dir)
            .args([
                "demo",
                "--events",
                &events.to_string(),
                "--days",
                &days.to_string(),
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .output()
            .unwrap(),
    );
}

/// `GROWTH_TEST_PYTHON`, else the venv `.ci/run` makes, when it can import `modules`
/// (e.g. `"openai, anthropic"`).
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let candidate = std::env::var_os("GROWTH_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cache/growth-stack/venv/bin/python"))
        })?;
    let ok = Command::new(&candidate)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}
