//! What every bench shares: a pooled HTTP client, a server process started from this
//! same binary, load phases sent by many workers, and their percentiles.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::app::StartError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bench: {0}")]
    Io(#[from] std::io::Error),
    #[error("bench: HTTP: {0}")]
    Http(String),
    #[error("bench: {0}")]
    Failed(String),
}

pub type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive client; no Nagle delay, so small requests are timed as sent.
pub fn http_client(connections: usize) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build(http)
}

/// Reads a child server's stdout up to its "listening on" banner, returns the URL, and
/// keeps draining the rest so the child never blocks on a full pipe.
async fn listen_url(child: &mut tokio::process::Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout from server")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next_line().await.map_err(|e| e.to_string())? {
            Some(line) => {
                if let Some(url) = line.strip_prefix("growth-stack listening on ") {
                    break url.trim().to_string();
                }
            }
            None => return Err("server exited before listening".into()),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(url)
}

/// One answer, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Sends one request with `headers` and reads the whole answer.
pub async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: String,
    headers: &[(&str, &str)],
) -> Result<Reply, BenchError> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?
        .to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Sends one request as a beacon does (`text/plain`) and reads the whole answer.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: String,
) -> Result<(u16, Bytes), BenchError> {
    send_as(client, method, url, body, None).await
}

/// `send` with a `User-Agent`, as a browser's beacon has.
pub async fn send_as(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: String,
    user_agent: Option<&'static str>,
) -> Result<(u16, Bytes), BenchError> {
    // text/plain, as navigator.sendBeacon sends it.
    let mut headers = vec![("content-type", "text/plain;charset=UTF-8")];
    if let Some(ua) = user_agent {
        headers.push(("user-agent", ua));
    }
    let reply = request(client, method, url, body, &headers).await?;
    Ok((reply.status, reply.body))
}

/// A GET answered 200 with JSON, parsed.
pub async fn get_json(client: &HttpClient, url: &str) -> Result<serde_json::Value, BenchError> {
    let (status, body) = send(client, "GET", url, String::new()).await?;
    if status != 200 {
        return Err(BenchError::Failed(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    serde_json::from_slice(&body).map_err(|e| BenchError::Http(e.to_string()))
}

/// Throughput and latency of one load phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub events: u64,
    pub requests: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Phase {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

pub fn print_phase(p: &Phase) {
    println!(
        "{:<16} {:>10.0} events/s {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} events in {:.2} s)",
        p.name,
        p.events_per_sec(),
        p.requests_per_sec(),
        p.p50_ms,
        p.p99_ms,
        p.events,
        p.seconds
    );
}

/// `load` against any ingest URL: `concurrency` workers, each on its own keep-alive
/// connection (no pool and no lock shared between workers, as wrk does), so the load
/// generator takes as little as it can of the cores it shares with the server.
pub async fn load_url(
    url: String,
    name: &'static str,
    bodies: Vec<String>,
    events_per_body: u64,
    concurrency: usize,
    user_agent: Option<&'static str>,
) -> Result<Phase, BenchError> {
    let requests = bodies.len() as u64;
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| BenchError::Failed(format!("{url}: {e}")))?;
    let queue = Arc::new(parking_lot::Mutex::new(bodies));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (queue, uri) = (queue.clone(), uri.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Connection::open(&uri).await?;
            let mut latencies = Vec::new();
            loop {
                let body = queue.lock().pop();
                let Some(body) = body else { break };
                let t = Instant::now();
                let status = conn.post(body, user_agent).await?;
                if status != 200 {
                    return Err(BenchError::Failed(format!("ingest answered {status}")));
                }
                latencies.push(t.elapsed());
            }
            Ok::<_, BenchError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.map_err(|e| BenchError::Failed(e.to_string()))??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = percentiles(&mut latencies);
    Ok(Phase {
        name,
        events: requests * events_per_body,
        requests,
        seconds,
        p50_ms,
        p99_ms,
    })
}

/// One load worker's own HTTP/1 connection.
struct Connection {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    path: String,
}

impl Connection {
    async fn open(uri: &hyper::Uri) -> Result<Connection, BenchError> {
        let http = |e: hyper::Error| BenchError::Http(e.to_string());
        let host = uri.host().unwrap_or("127.0.0.1");
        let port = uri.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(http)?;
        tokio::spawn(conn);
        Ok(Connection {
            send,
            host: format!("{host}:{port}"),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }

    /// POSTs `body` as a beacon does (`text/plain`) and reads the whole answer.
    async fn post(
        &mut self,
        body: String,
        user_agent: Option<&'static str>,
    ) -> Result<u16, BenchError> {
        let http = |e: hyper::Error| BenchError::Http(e.to_string());
        let mut req = hyper::Request::post(self.path.as_str())
            .header("host", self.host.as_str())
            .header("content-type", "text/plain;charset=UTF-8");
        if let Some(ua) = user_agent {
            req = req.header("user-agent", ua);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| BenchError::Http(e.to_string()))?;
        self.send.ready().await.map_err(http)?;
        let resp = self.send.send_request(req).await.map_err(http)?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.map_err(http)?;
        Ok(status)
    }
}

pub fn percentiles(latencies: &mut [Duration]) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// A server process from this binary, on a free loopback port with its own data dir.
pub struct Server {
    child: Child,
    pub url: String,
    pub ready_ms: f64,
}

impl Server {
    pub async fn start(data_dir: &Path) -> Result<Server, BenchError> {
        Server::start_with(data_dir, &[]).await
    }

    /// `start` with environment variables set (`Some`) or removed (`None`).
    pub async fn start_with(
        data_dir: &Path,
        env: &[(&str, Option<String>)],
    ) -> Result<Server, BenchError> {
        Server::start_from(&std::env::current_exe()?, data_dir, env).await
    }

    /// `start_with` the server of the binary `exe` (another build, for a before/after).
    pub async fn start_from(
        exe: &Path,
        data_dir: &Path,
        env: &[(&str, Option<String>)],
    ) -> Result<Server, BenchError> {
        let spawned = Instant::now();
        let mut command = Command::new(exe);
        command.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--rate-limit",
            "0",
            "--data-dir",
        ]);
        command
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("GROWTH_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn()?;
        let url = listen_url(&mut child).await.map_err(BenchError::Failed)?;
        let client = http_client(1);
        loop {
            if let Ok((200, _)) =
                send(&client, "GET", &format!("{url}/readyz"), String::new()).await
            {
                break;
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                return Err(BenchError::Failed("server not ready after 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready_ms = spawned.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Server {
            child,
            url,
            ready_ms,
        })
    }

    /// CPU time the server process has used so far (user + system, every thread), s.
    /// Less noisy than throughput on a shared machine: CPU per request.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let mut fields = rest.split_whitespace().skip(11);
        let utime: f64 = fields.next()?.parse().ok()?;
        let stime: f64 = fields.next()?.parse().ok()?;
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks > 0.0).then(|| (utime + stime) / ticks)
    }

    pub fn rss_mb(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    pub async fn stop(mut self) -> Result<(), BenchError> {
        if let Some(pid) = self.child.id() {
            // SIGTERM: the server drains, checkpoints and exits 0.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let status = self.child.wait().await?;
        if !status.success() {
            return Err(BenchError::Failed(format!("server exited with {status}")));
        }
        Ok(())
    }
}
