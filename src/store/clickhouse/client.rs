//! A small ClickHouse HTTP client on the hyper-util pool we already use: settings as URL
//! parameters, JSONEachRow in and out, `Code: N` error bodies as a typed error, and
//! fail-over along the configured URL list when a server cannot be reached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

/// Settings sent with every request. 18.16 quotes 64-bit integers in JSON unless told not
/// to (current releases do not); `wait_end_of_query` makes the status code final.
const ALWAYS: &[(&str, &str)] = &[
    ("output_format_json_quote_64bit_integers", "0"),
    ("wait_end_of_query", "1"),
];

/// Longest a query or insert may take before the server counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ChError {
    /// No server of the list answered (refused, reset, timed out).
    #[error("no ClickHouse server answered: {0}")]
    Unreachable(String),
    /// A server answered with an error: its `Code: N` and message.
    #[error("ClickHouse error {code} (HTTP {status}): {message}")]
    Server {
        code: u32,
        status: u16,
        message: String,
    },
    #[error("cannot read ClickHouse's answer: {0}")]
    Decode(String),
    /// A request this engine does not serve yet (named): 501 `not_on_clickhouse`.
    #[error("{0} is not available on the ClickHouse engine yet")]
    NotPorted(String),
}

impl ChError {
    /// Whether retrying later can succeed: the cluster is down, overloaded or a shard is
    /// unreachable, as opposed to a query ClickHouse will never accept.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ChError::Unreachable(_) => true,
            ChError::Server { code, status, .. } => {
                // NETWORK_ERROR, SOCKET_TIMEOUT, TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED,
                // TOO_MANY_SIMULTANEOUS_QUERIES, TABLE_IS_READ_ONLY, TOO_MANY_PARTS,
                // ALL_CONNECTION_TRIES_FAILED, ALL_REPLICAS_ARE_STALE, NO_REPLICA_HAS_PART,
                // KEEPER_EXCEPTION, TOO_MANY_ROWS_OR_BYTES...
                matches!(
                    code,
                    159 | 160
                        | 164
                        | 202
                        | 209
                        | 210
                        | 241
                        | 242
                        | 252
                        | 279
                        | 285
                        | 319
                        | 425
                        | 999
                ) || *status == 503
            }
            ChError::Decode(_) | ChError::NotPorted(_) => false,
        }
    }
}

/// `Code: 47, e.displayText() = ...` (18.16) or `Code: 47. DB::Exception: ...` (current).
pub fn parse_error(status: u16, body: &[u8]) -> ChError {
    let text = String::from_utf8_lossy(body).trim().to_string();
    let code = text
        .find("Code: ")
        .map(|i| &text[i + 6..])
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0);
    ChError::Server {
        code,
        status,
        message: text,
    }
}

pub struct Client {
    pool: Pool<HttpConnector, Full<Bytes>>,
    urls: Vec<String>,
    user: String,
    password: String,
    /// Send request bodies gzip-compressed (`Content-Encoding: gzip`).
    gzip: bool,
    /// The server that answered last: requests start there, so a dead one is not retried
    /// on every request.
    current: AtomicUsize,
}

impl Client {
    pub fn new(urls: &[String], user: &str, password: Option<&str>, gzip: bool) -> Client {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(3)));
        http.set_nodelay(true);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(http);
        Client {
            pool,
            urls: urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            user: user.to_string(),
            password: password.unwrap_or_default().to_string(),
            gzip,
            current: AtomicUsize::new(0),
        }
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// POSTs `body` with `settings` to the first server that answers, starting at the one
    /// that answered last. Only transport failures move on to the next server: an error
    /// a server answered is the answer.
    pub async fn post(&self, settings: &[(&str, &str)], body: Bytes) -> Result<Bytes, ChError> {
        let n = self.urls.len();
        let start = self.current.load(Ordering::Relaxed) % n.max(1);
        let mut last = String::from("no URL configured (clickhouse.url)");
        for i in 0..n {
            let at = (start + i) % n;
            match self.post_to(at, settings, body.clone()).await {
                Err(ChError::Unreachable(e)) => {
                    tracing::warn!(url = %self.urls[at], error = %e, "ClickHouse server unreachable; trying the next");
                    last = format!("{}: {e}", self.urls[at]);
                }
                other => {
                    self.current.store(at, Ordering::Relaxed);
                    return other;
                }
            }
        }
        Err(ChError::Unreachable(last))
    }

    /// POSTs to the server at index `at` of the list only.
    pub async fn post_to(
        &self,
        at: usize,
        settings: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Bytes, ChError> {
        let exchange = async {
            let resp = self.send_to(at, settings, body).await?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ChError::Unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, ChError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| ChError::Unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))??;
        if status == 200 {
            Ok(body)
        } else {
            Err(parse_error(status, &body))
        }
    }

    /// Like `post`, but the answer's body is handed back as it arrives, for results too
    /// large to hold (exports). `wait_end_of_query` still holds: the status is final, and
    /// a query that fails half-way answers an error, never a cut-off 200.
    pub async fn post_stream(
        &self,
        settings: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Incoming, ChError> {
        let n = self.urls.len();
        let start = self.current.load(Ordering::Relaxed) % n.max(1);
        let mut last = String::from("no URL configured (clickhouse.url)");
        for i in 0..n {
            let at = (start + i) % n;
            let sent =
                tokio::time::timeout(REQUEST_TIMEOUT, self.send_to(at, settings, body.clone()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ChError::Unreachable(format!(
                            "no answer within {REQUEST_TIMEOUT:?}"
                        )))
                    });
            match sent {
                Err(ChError::Unreachable(e)) => {
                    tracing::warn!(url = %self.urls[at], error = %e, "ClickHouse server unreachable; trying the next");
                    last = format!("{}: {e}", self.urls[at]);
                }
                Err(e) => return Err(e),
                Ok(resp) => {
                    self.current.store(at, Ordering::Relaxed);
                    let status = resp.status().as_u16();
                    if status == 200 {
                        return Ok(resp.into_body());
                    }
                    let body = tokio::time::timeout(REQUEST_TIMEOUT, resp.into_body().collect())
                        .await
                        .map_err(|_| ChError::Unreachable("the error body never ended".into()))?
                        .map_err(|e| ChError::Unreachable(e.to_string()))?
                        .to_bytes();
                    return Err(parse_error(status, &body));
                }
            }
        }
        Err(ChError::Unreachable(last))
    }

    /// Sends the request to server `at`; its body is not read yet.
    async fn send_to(
        &self,
        at: usize,
        settings: &[(&str, &str)],
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, ChError> {
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in ALWAYS.iter().chain(settings) {
                q.append_pair(k, v);
            }
            q.finish()
        };
        let uri = format!("{}/?{query}", self.urls[at]);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header("X-ClickHouse-User", &self.user)
            .header("X-ClickHouse-Key", &self.password);
        let body = if self.gzip {
            req = req.header("Content-Encoding", "gzip");
            gzip(&body).map_err(|e| ChError::Decode(format!("cannot gzip the body: {e}")))?
        } else {
            body
        };
        let req = req
            .body(Full::new(body))
            .map_err(|e| ChError::Unreachable(format!("bad URL {uri:?}: {e}")))?;
        self.pool
            .request(req)
            .await
            .map_err(|e| ChError::Unreachable(describe(&e)))
    }

    /// Runs a statement that returns nothing (DDL).
    pub async fn execute(&self, sql: &str) -> Result<(), ChError> {
        self.post(&[], Bytes::from(sql.to_string())).await.map(drop)
    }

    /// Runs a statement on server `at` only (DDL applied server by server).
    pub async fn execute_on(&self, at: usize, sql: &str) -> Result<(), ChError> {
        self.post_to(at, &[], Bytes::from(sql.to_string()))
            .await
            .map(drop)
    }

    /// Runs a SELECT and reads each JSONEachRow line as a `T`.
    pub async fn rows<T: DeserializeOwned>(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<Vec<T>, ChError> {
        let body = self
            .post(settings, Bytes::from(format!("{sql} FORMAT JSONEachRow")))
            .await?;
        body.split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(decode)
            .collect()
    }

    /// Inserts `rows` into `table`, sent as `format` says (`" FORMAT JSONEachRow"`, or a
    /// column list and `FORMAT RowBinary`), with `settings`.
    pub async fn insert(
        &self,
        table: &str,
        format: &str,
        rows: Bytes,
        settings: &[(&str, &str)],
    ) -> Result<(), ChError> {
        let query = format!("INSERT INTO {table}{format}");
        let mut all: Vec<(&str, &str)> = vec![("query", &query)];
        all.extend_from_slice(settings);
        self.post(&all, rows).await.map(drop)
    }
}

/// The rows of a streamed JSONEachRow answer, read one line at a time as the body
/// arrives, so a large result is never held whole.
pub struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    start: usize,
    ended: bool,
}

impl Lines {
    pub fn new(body: Incoming) -> Lines {
        Lines {
            body,
            buf: Vec::new(),
            start: 0,
            ended: false,
        }
    }

    /// The next row, or `None` after the last.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ChError> {
        loop {
            if let Some(n) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let line = &self.buf[self.start..self.start + n];
                self.start += n + 1;
                if line.is_empty() {
                    continue;
                }
                return decode(line).map(Some);
            }
            if self.ended {
                let line = &self.buf[self.start..];
                self.start = self.buf.len();
                return if line.is_empty() {
                    Ok(None)
                } else {
                    decode(line).map(Some)
                };
            }
            self.buf.drain(..self.start);
            self.start = 0;
            match next_chunk(&mut self.body).await? {
                Some(data) => self.buf.extend_from_slice(&data),
                None => self.ended = true,
            }
        }
    }
}

fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, ChError> {
    serde_json::from_slice(line)
        .map_err(|e| ChError::Decode(format!("{e} in {:?}", String::from_utf8_lossy(line))))
}

/// The next data chunk of a streamed answer, `None` at its end; a stall longer than the
/// request timeout counts as the server gone.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, ChError> {
    loop {
        let frame = tokio::time::timeout(REQUEST_TIMEOUT, body.frame())
            .await
            .map_err(|_| ChError::Unreachable(format!("no data within {REQUEST_TIMEOUT:?}")))?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(ChError::Unreachable(e.to_string())),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish().map(Bytes::from)
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_of_both_versions() {
        let old = parse_error(
            404,
            b"Code: 60, e.displayText() = DB::Exception: Table growth.x doesn't exist., e.what() = DB::Exception\n",
        );
        assert!(
            matches!(
                old,
                ChError::Server {
                    code: 60,
                    status: 404,
                    ..
                }
            ),
            "{old:?}"
        );
        let new = parse_error(
            500,
            b"Code: 279. DB::Exception: All connection tries failed",
        );
        assert!(matches!(new, ChError::Server { code: 279, .. }));
        assert!(new.is_unavailable());
        assert!(!old.is_unavailable());
        assert!(matches!(
            parse_error(502, b"bad gateway"),
            ChError::Server { code: 0, .. }
        ));
    }
}
