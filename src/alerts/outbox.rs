//! The persisted outbox: notifications are written to DuckDB in the same transaction that
//! records them as sent in the group log, then delivered by one task, oldest first per
//! channel. Only a 2xx takes one off the queue; a failure is retried with exponential
//! back-off, a 429 after its `Retry-After` header or Slack/Discord `retry_after` body, so
//! a receiver that is down for a while, or a restart, loses nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, StatusCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use duckdb::params;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;

pub use super::records::{Group, GroupChange, Pending};
use super::{shared, Engine};
use crate::http::client::HttpClient;
use crate::store::{query_json, ts_param, JsonRow, Store, StoreError};

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Queues notifications and writes the group log, all or nothing.
pub async fn enqueue(
    engine: &Engine,
    queued: Vec<Pending>,
    changes: Vec<GroupChange>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(ch) = engine.store.clickhouse() {
        return shared::enqueue(ch, queued, changes, now).await;
    }
    let first_id = engine
        .next_outbox_id
        .fetch_add(queued.len() as i64, Ordering::Relaxed);
    let n = queued.len();
    engine
        .store
        .maintain(move |c| {
            c.execute_batch("BEGIN TRANSACTION")?;
            let result = (|| -> Result<(), StoreError> {
                let now = ts_param(now.timestamp_micros());
                let mut ins = c.prepare(
                    "INSERT INTO alert_outbox (id, channel, kind, url, body, status, summary, \
                     created_at, next_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                )?;
                for (i, p) in queued.iter().enumerate() {
                    ins.execute(params![
                        first_id + i as i64,
                        p.channel,
                        p.kind,
                        p.url,
                        p.body.to_string(),
                        format!("{} ({})", p.summary, p.status),
                        now.clone(),
                        now.clone(),
                    ])?;
                }
                for ch in &changes {
                    match ch {
                        GroupChange::Put(channel, key, g) => {
                            c.execute(
                                "INSERT OR REPLACE INTO alert_groups (channel, group_key, first_at, sent_at, sent_hash) \
                                 VALUES (?, ?, ?, ?, ?)",
                                params![
                                    channel,
                                    key,
                                    ts_param(g.first_at.timestamp_micros()),
                                    g.sent_at.map(|t| ts_param(t.timestamp_micros())),
                                    g.sent_firing.join(","),
                                ],
                            )?;
                        }
                        GroupChange::Delete(channel, key) => {
                            c.execute(
                                "DELETE FROM alert_groups WHERE channel = ? AND group_key = ?",
                                params![channel, key],
                            )?;
                        }
                    }
                }
                Ok(())
            })();
            match result {
                Ok(()) => Ok(c.execute_batch("COMMIT")?),
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await?;
    if n > 0 {
        engine.outbox_pending.fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

/// The group log as saved.
pub async fn load_groups(store: &Store) -> Result<Vec<(String, String, Group)>, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return shared::groups(ch).await;
    }
    store
        .query(|c| {
            let mut stmt = c.prepare(
                "SELECT channel, group_key, epoch_us(first_at), epoch_us(sent_at), coalesce(sent_hash, '') \
                 FROM alert_groups",
            )?;
            let rows = stmt.query_map([], |r| {
                let at = |us: Option<i64>| us.and_then(DateTime::from_timestamp_micros);
                let fps: String = r.get(4)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Group {
                        first_at: at(r.get(2)?).unwrap_or_else(Utc::now),
                        sent_at: at(r.get(3)?),
                        sent_firing: fps
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// (next id, notifications still to deliver). On ClickHouse ids come from the clock
/// (`shared::enqueue`) and the round's node reads the queue itself: neither is counted.
pub async fn load_counters(store: &Store) -> Result<(i64, usize), StoreError> {
    if store.clickhouse().is_some() {
        return Ok((1, 0));
    }
    store
        .query(|c| {
            Ok(c.query_row(
                "SELECT coalesce(max(id), 0) + 1, count(*) FILTER (WHERE status = 'pending') FROM alert_outbox",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as usize)),
            )?)
        })
        .await
}

struct Head {
    id: i64,
    url: String,
    body: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    next_at: DateTime<Utc>,
}

/// The oldest undelivered notification of every channel: later ones wait, so a receiver
/// never sees a resolved before its firing.
async fn heads(store: &Store) -> Result<Vec<Head>, StoreError> {
    store
        .query(|c| {
            let mut stmt = c.prepare(
                "SELECT id, url, body::VARCHAR, attempts, epoch_us(created_at), epoch_us(next_at) \
                 FROM alert_outbox WHERE id IN (SELECT min(id) FROM alert_outbox \
                 WHERE status = 'pending' GROUP BY channel) ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or_default();
                Ok(Head {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    body: r.get(2)?,
                    attempts: r.get(3)?,
                    created_at: at(r.get(4)?),
                    next_at: at(r.get(5)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// Why a delivery failed, and when it may be tried again.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub retry_after: Option<Duration>,
    /// A 4xx other than 408/429: the receiver refuses this body; retrying will not help.
    pub permanent: bool,
}

#[derive(Deserialize)]
struct RetryBody {
    retry_after: Option<f64>,
}

fn retry_after(h: &axum::http::HeaderMap, body: &[u8]) -> Option<Duration> {
    let header = h
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = serde_json::from_slice::<RetryBody>(body)
        .ok()
        .and_then(|b| b.retry_after);
    header
        .or(body)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER))
}

pub async fn send(client: &HttpClient, url: &str, body: String) -> Result<(), Failure> {
    let fail = |message: String| Failure {
        message,
        retry_after: None,
        permanent: false,
    };
    let req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("growth-stack/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure {
            message: format!("bad receiver URL: {e}"),
            retry_after: None,
            permanent: true,
        })?;
    let resp = match tokio::time::timeout(SEND_TIMEOUT, client.request(req)).await {
        Err(_) => return Err(fail("no answer within 10 s".into())),
        Ok(Err(e)) => {
            use std::error::Error;
            let cause = e.source().map(|s| s.to_string()).unwrap_or_default();
            return Err(fail(
                format!("cannot reach the receiver: {e} {cause}")
                    .trim()
                    .into(),
            ));
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = tokio::time::timeout(
        SEND_TIMEOUT,
        Limited::new(resp.into_body(), 64 * 1024).collect(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|b| b.to_bytes())
    .unwrap_or_default();
    if status.is_success() {
        return Ok(());
    }
    let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
    Err(Failure {
        message: format!("receiver answered {status}: {text}"),
        retry_after: (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| retry_after(&headers, &bytes))
            .flatten(),
        permanent: status.is_client_error()
            && status != StatusCode::TOO_MANY_REQUESTS
            && status != StatusCode::REQUEST_TIMEOUT,
    })
}

/// 1 s, 2 s, 4 s, ... up to 5 min, with up to 20% jitter so receivers are not hit in step.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
    let d = exp.min(BACKOFF_CAP);
    d + d.mul_f64(rand::random::<f64>() * 0.2)
}

async fn mark(
    engine: &Engine,
    id: i64,
    status: &str,
    attempts: i32,
    next_at: DateTime<Utc>,
    error: Option<String>,
) -> Result<(), StoreError> {
    let status = status.to_string();
    let _w = engine.writes.lock().await;
    engine
        .store
        .maintain(move |c| {
            c.execute(
                "UPDATE alert_outbox SET status = ?, attempts = ?, next_at = ?, last_error = ?, \
                 sent_at = CASE WHEN ? = 'sent' THEN current_timestamp ELSE sent_at END WHERE id = ?",
                params![
                    status,
                    attempts,
                    ts_param(next_at.timestamp_micros()),
                    error,
                    status,
                    id
                ],
            )?;
            Ok(())
        })
        .await
}

/// Delivers until the store closes.
pub async fn run(engine: Arc<Engine>) {
    let retry_for = chrono::Duration::seconds(engine.config.alerts.retry_for.0 as i64);
    loop {
        let mut wait = Duration::from_secs(30);
        if engine.outbox_pending.load(Ordering::Relaxed) > 0 {
            match heads(&engine.store).await {
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "cannot read the alert outbox; retrying"),
                Ok(heads) => {
                    for h in heads {
                        let now = Utc::now();
                        if h.next_at > now {
                            wait = wait.min((h.next_at - now).to_std().unwrap_or_default());
                            continue;
                        }
                        let attempts = h.attempts + 1;
                        let result = send(&engine.client, &h.url, h.body).await;
                        let now = Utc::now();
                        let r = match result {
                            Ok(()) => {
                                wait = Duration::ZERO;
                                engine.outbox_pending.fetch_sub(1, Ordering::Relaxed);
                                mark(&engine, h.id, "sent", attempts, now, None).await
                            }
                            Err(f) if f.permanent || now - h.created_at > retry_for => {
                                tracing::warn!(id = h.id, error = %f.message, "alert notification given up");
                                wait = Duration::ZERO;
                                engine.outbox_pending.fetch_sub(1, Ordering::Relaxed);
                                mark(&engine, h.id, "failed", attempts, now, Some(f.message)).await
                            }
                            Err(f) => {
                                let delay = f
                                    .retry_after
                                    .unwrap_or_else(|| backoff(attempts.max(1) as u32));
                                tracing::info!(id = h.id, error = %f.message, retry_in_ms = delay.as_millis() as u64, "alert notification failed; will retry");
                                wait = wait.min(delay);
                                let next = now
                                    + chrono::Duration::from_std(delay)
                                        .unwrap_or(chrono::Duration::seconds(1));
                                mark(&engine, h.id, "pending", attempts, next, Some(f.message))
                                    .await
                            }
                        };
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "cannot update the alert outbox");
                        }
                    }
                }
            }
        }
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, engine.wake_outbox.notified()).await;
        }
    }
}

/// On ClickHouse: delivers the due head of every channel from the shared queue, each send
/// cut short at `until` (the end of this node's round lease), so no other node delivers
/// while this one does. A send cut short counts as a failed attempt and is retried.
pub async fn deliver_shared(
    engine: &Engine,
    ch: &crate::store::clickhouse::ClickHouse,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    let retry_for = chrono::Duration::seconds(engine.config.alerts.retry_for.0 as i64);
    // As the DuckDB task does: after a head is done with, the channel's next one.
    let mut progressed = true;
    while progressed {
        progressed = false;
        for h in shared::heads(ch).await? {
            let now = Utc::now();
            if h.next_at > now.timestamp_micros() {
                continue;
            }
            let Ok(left) = (until - now).to_std() else {
                return Ok(());
            };
            let attempts = h.attempts + 1;
            let body = h.body.to_string();
            let result = match tokio::time::timeout(left, send(&engine.client, &h.url, body)).await
            {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    message: "cut short: this node's turn to deliver ended".into(),
                    retry_after: None,
                    permanent: false,
                }),
            };
            let now = Utc::now();
            let created = DateTime::from_timestamp_micros(h.created_at).unwrap_or(now);
            match result {
                Ok(()) => {
                    progressed = true;
                    shared::mark(ch, h, "sent", attempts, now, None).await?
                }
                Err(f) if f.permanent || now - created > retry_for => {
                    tracing::warn!(id = h.id, error = %f.message, "alert notification given up");
                    progressed = true;
                    shared::mark(ch, h, "failed", attempts, now, Some(f.message)).await?
                }
                Err(f) => {
                    let delay = f
                        .retry_after
                        .unwrap_or_else(|| backoff(attempts.max(1) as u32));
                    tracing::info!(id = h.id, error = %f.message, retry_in_ms = delay.as_millis() as u64, "alert notification failed; will retry");
                    let next = now
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
                    shared::mark(ch, h, "pending", attempts, next, Some(f.message)).await?
                }
            }
        }
    }
    Ok(())
}

/// Recent notifications and how their delivery went (receiver URLs left out: Slack's and
/// Discord's carry a secret); `status` is `pending`, `sent` or `failed`.
pub async fn recent(
    store: &Store,
    status: Option<&'static str>,
    limit: u32,
) -> Result<Vec<JsonRow>, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return shared::recent(ch, status, limit).await;
    }
    let limit = i64::from(limit);
    store
        .query(move |c| {
            query_json(
                c,
                "SELECT id, channel, kind, status, summary, attempts, created_at, next_at, sent_at, \
                 last_error, body::VARCHAR AS body FROM alert_outbox \
                 WHERE (?::VARCHAR IS NULL OR status = ?::VARCHAR) ORDER BY id DESC LIMIT ?",
                params![status, status, limit],
                &["body"],
            )
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert!(backoff(1) >= Duration::from_secs(1) && backoff(1) < Duration::from_millis(1300));
        assert!(backoff(3) >= Duration::from_secs(4));
        assert!(backoff(30) <= Duration::from_secs(360));
    }

    #[test]
    fn retry_after_from_header_or_body() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(
            retry_after(&h, br#"{"retry_after": 1.5}"#),
            Some(Duration::from_millis(1500))
        );
        h.insert(header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h, b""), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&axum::http::HeaderMap::new(), b"nope"), None);
    }
}
