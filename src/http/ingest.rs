//! The one ingest path every stream shares: read, parse, validate every item, then append
//! all rows as one batch and answer only after the commit.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use super::auth::Sender;
use super::body;
use crate::error::ApiError;
use crate::state::{AppState, IpPolicy};
use crate::store::Batch;

pub const MAX_USER_AGENT: usize = 512;
/// Ids, names, models, endpoints.
pub const MAX_SHORT: usize = 256;
/// Routes, referrers, URLs.
pub const MAX_URL: usize = 2048;
/// Error messages.
pub const MAX_TEXT: usize = 4096;
pub const MAX_QUERY: usize = 16 * 1024;
/// Serialised `properties` object, in bytes.
pub const MAX_PROPERTIES: usize = 16 * 1024;
/// Durations above a day are a unit mistake, not a measurement.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;
/// Client clocks drift; a day ahead is drift, more is a bug (often seconds vs milliseconds).
const MAX_FUTURE_MS: i64 = 86_400_000;
/// 2000-01-01: anything earlier is almost surely seconds sent as milliseconds.
const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;

/// A validation failure inside one item.
#[derive(Debug)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// One item of a stream as clients send it; it knows how to become a stored row.
pub trait IngestItem: DeserializeOwned + Send {
    type Row;
    fn into_row(self, ctx: &Ctx<'_>) -> Result<Self::Row, FieldError>;
    fn into_batch(rows: Vec<Self::Row>) -> Batch;
}

/// What the server fills in: clock, sender address (already anonymised) and user agent.
pub struct Ctx<'a> {
    pub now_us: i64,
    sender_ip: Option<String>,
    user_agent: Option<&'a str>,
    policy: &'a IpPolicy,
}

impl<'a> Ctx<'a> {
    pub fn new(sender: &'a Sender, policy: &'a IpPolicy, now: DateTime<Utc>) -> Self {
        Ctx {
            now_us: now.timestamp_micros(),
            sender_ip: policy.apply(sender.ip),
            user_agent: sender.user_agent.as_deref(),
            policy,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.now_us / 1000
    }

    pub fn id(&self, id: Option<Uuid>) -> Uuid {
        id.unwrap_or_else(Uuid::new_v4)
    }

    /// A server-side SDK may report the end user's address; it is anonymised the same way.
    pub fn ip(&self, supplied: Option<String>) -> Result<Option<String>, FieldError> {
        match supplied {
            None => Ok(self.sender_ip.clone()),
            Some(s) => {
                let ip = s
                    .trim()
                    .parse()
                    .map_err(|_| field_error("ip", "is not an IPv4 or IPv6 address"))?;
                Ok(self.policy.apply(ip))
            }
        }
    }

    pub fn user_agent(&self, supplied: Option<String>) -> Result<Option<String>, FieldError> {
        match supplied {
            Some(s) => text(Some(s), "user_agent", MAX_USER_AGENT),
            None => Ok(self.user_agent.map(str::to_string)),
        }
    }

    /// Client time in epoch milliseconds; now when absent.
    pub fn timestamp(&self, t: Option<i64>) -> Result<i64, FieldError> {
        let Some(t) = t else { return Ok(self.now_ms()) };
        if t < MIN_TIMESTAMP_MS {
            return Err(field_error(
                "timestamp",
                "is before the year 2000; send milliseconds since the Unix epoch",
            ));
        }
        if t > self.now_ms() + MAX_FUTURE_MS {
            return Err(field_error("timestamp", "is more than a day in the future"));
        }
        Ok(t)
    }

    /// Server time in epoch microseconds; a client may backfill it, never into the future.
    pub fn created_at(&self, c: Option<DateTime<Utc>>) -> Result<i64, FieldError> {
        let Some(c) = c else { return Ok(self.now_us) };
        let us = c.timestamp_micros();
        if us > self.now_us + MAX_FUTURE_MS * 1000 {
            return Err(field_error(
                "created_at",
                "is more than a day in the future",
            ));
        }
        if us < MIN_TIMESTAMP_MS * 1000 {
            return Err(field_error("created_at", "is before the year 2000"));
        }
        Ok(us)
    }
}

/// A user id as apps send it: a string ("user-42", a UUID) or an integer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserId {
    Text(String),
    Number(i64),
}

pub fn user_id(v: Option<UserId>) -> Result<Option<String>, FieldError> {
    match v {
        None => Ok(None),
        Some(UserId::Number(n)) => Ok(Some(n.to_string())),
        Some(UserId::Text(s)) => {
            let s = s.trim().to_string();
            if s.is_empty() {
                return Ok(None);
            }
            text(Some(s), "user_id", MAX_SHORT)
        }
    }
}

pub fn text(
    v: Option<String>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match v {
        Some(s) if s.chars().count() > max => Err(field_error(
            field,
            format!("is longer than {max} characters"),
        )),
        other => Ok(other),
    }
}

pub fn required(v: String, field: &'static str, max: usize) -> Result<String, FieldError> {
    if v.trim().is_empty() {
        return Err(field_error(field, "must not be empty"));
    }
    text(Some(v), field, max).map(|s| s.unwrap_or_default())
}

pub fn duration(v: f64, field: &'static str) -> Result<f64, FieldError> {
    if !v.is_finite() || v < 0.0 {
        return Err(field_error(
            field,
            "must be a finite number >= 0 (milliseconds)",
        ));
    }
    if v > MAX_DURATION_MS {
        return Err(field_error(
            field,
            "is longer than a day; send milliseconds",
        ));
    }
    Ok(v)
}

pub fn opt_duration(v: Option<f64>, field: &'static str) -> Result<Option<f64>, FieldError> {
    v.map(|v| duration(v, field)).transpose()
}

pub fn count(v: Option<i64>, field: &'static str) -> Result<Option<i32>, FieldError> {
    v.map(|n| {
        i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| field_error(field, "must be an integer between 0 and 2147483647"))
    })
    .transpose()
}

pub fn properties(v: Option<serde_json::Value>) -> Result<Option<String>, FieldError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(obj @ serde_json::Value::Object(_)) => {
            let s = obj.to_string();
            if s.len() > MAX_PROPERTIES {
                return Err(field_error(
                    "properties",
                    format!("is larger than {MAX_PROPERTIES} bytes of JSON"),
                ));
            }
            Ok(Some(s))
        }
        Some(_) => Err(field_error("properties", "must be a JSON object")),
    }
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub accepted: usize,
}

/// The handler behind every `POST /api/analytics/...`: a batch with one bad item writes nothing.
pub async fn handler<T: IngestItem>(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let cfg = &state.config.ingest;
    let bytes = body::read(&headers, body, cfg.body_limit).await?;
    let (items, is_batch) = body::parse_items::<T>(&bytes, cfg.max_batch)?;
    let ctx = Ctx::new(&sender, &state.privacy, Utc::now());
    let rows = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            item.into_row(&ctx)
                .map_err(|e| ApiError::invalid(is_batch.then_some(i), e.field, e.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = rows.len();
    state.store.append(T::into_batch(rows)).await?;
    Ok(Json(Accepted { accepted }))
}
