//! The one ingest path every stream shares: read, parse, validate every item, then append
//! all rows as one batch and answer only after the commit (`handler::<Item>`).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use std::net::IpAddr;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Sender;
use super::body;
use super::event_time;
use crate::error::ApiError;
use crate::state::{AppState, IpPolicy};
use crate::store::Batch;

pub use super::field::{field_error, FieldError};
pub use super::limits::{
    END_TIMESTAMP_MS, MAX_DURATION_MS, MAX_PROPERTIES, MAX_QUERY, MAX_SHORT, MAX_TEXT, MAX_URL,
    MAX_USER_AGENT, MIN_TIMESTAMP_MS,
};
/// One item of a stream as clients send it, and how it becomes a stored row. Every
/// `POST /api/analytics/...` is `handler::<TheItem>`; a new stream only writes this:
///
/// ```ignore
/// #[derive(Debug, Deserialize, ToSchema)]
/// #[serde(deny_unknown_fields)]
/// pub struct ScaleEventIn { id: Option<Uuid>, #[schema(min_length = 1, max_length = 256)] kind: String, ... }
///
/// impl IngestItem for ScaleEventIn {
///     type Row = ScaleRow;
///     type Scope<'a> = ();
///     fn scope<'a>(_: &'a AppState, _: &'a HeaderMap) {}
///     fn into_row(self, ctx: &Ctx<'_>, _: &()) -> Result<Option<ScaleRow>, FieldError> {
///         Ok(Some(ScaleRow { id: ctx.id(self.id), kind: required(self.kind, "kind", MAX_SHORT)?, ... }))
///     }
///     fn into_batch(rows: Vec<ScaleRow>) -> Batch { Batch::Scale(rows) }
/// }
/// // mod.rs: .route("/api/analytics/scaling", post(handler::<ScaleEventIn>))
/// // api.rs: #[utoipa::path(post, path = "/api/analytics/scaling", request_body(content = OneOrMany<ScaleEventIn>, ...), ...)]
/// ```
pub trait IngestItem: DeserializeOwned + Send {
    type Row: Send;
    /// What the stream reads from the request once, besides `Ctx` (the page's site, the
    /// Referer, its config); `()` for most streams.
    type Scope<'a>;
    /// How items dropped on purpose are reported in the answer.
    const SKIPPED: Skipped = Skipped::Never;
    fn scope<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Self::Scope<'a>;
    /// The row to store, or `None` to drop the item on purpose (a crawler's event, a
    /// timing that is not a web vital); an error refuses the whole batch.
    fn into_row(
        self,
        ctx: &Ctx<'_>,
        scope: &Self::Scope<'_>,
    ) -> Result<Option<Self::Row>, FieldError>;
    fn into_batch(rows: Vec<Self::Row>) -> Batch;
}

/// Whether and how an answer counts the items a stream dropped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// The stream never drops items.
    Never,
    /// `ignored`, always present (performance: Next.js custom timings).
    Ignored,
    /// `bots`, present when not zero (events from crawlers).
    Bots,
}

/// What the server fills in: clock, sender address (already anonymised) and user agent.
pub struct Ctx<'a> {
    pub now_us: i64,
    /// The batch's `?sent_at=` (client clock at send, ms), for the clock-skew correction.
    sent_at: Option<i64>,
    /// The current item's place in its request (see `event_time::ordered`).
    index: std::cell::Cell<usize>,
    /// The sender's own address, before anonymisation (for visitor ids, never stored).
    pub sender_ip: IpAddr,
    stored_ip: Option<String>,
    user_agent: Option<&'a str>,
    policy: &'a IpPolicy,
}

impl<'a> Ctx<'a> {
    pub fn new(sender: &'a Sender, policy: &'a IpPolicy, now: DateTime<Utc>) -> Self {
        Ctx {
            now_us: now.timestamp_micros(),
            sent_at: None,
            index: std::cell::Cell::new(0),
            sender_ip: sender.ip,
            stored_ip: policy.apply(sender.ip),
            user_agent: sender.user_agent.as_deref(),
            policy,
        }
    }

    /// With the batch's `sent_at` (client clock at send, epoch ms).
    pub fn with_sent_at(mut self, sent_at: Option<i64>) -> Self {
        self.sent_at = sent_at;
        self
    }

    /// Sets the place in its request of the item converted next.
    pub fn set_index(&self, i: usize) {
        self.index.set(i);
    }

    /// The three times of a row: the client `timestamp` (ms; now when absent), the
    /// server's `created_at` (µs; a backfill later than now is now) and the `event_time`
    /// (µs) the analytics read, from the one rule in `event_time`. `sent_at` is the item's
    /// own, else the batch's.
    pub fn times(
        &self,
        timestamp: Option<JsonInt>,
        sent_at: Option<JsonInt>,
        created_at: Option<DateTime<Utc>>,
    ) -> Result<Times, FieldError> {
        let created_at = self.created_at(created_at)?;
        let sent_at = sent_at.map(|s| s.0).or(self.sent_at);
        let at = event_time::event_time(created_at, timestamp.map(|t| t.0), sent_at)?;
        Ok(Times {
            timestamp: self.timestamp(timestamp)?,
            created_at,
            event_time: event_time::ordered(at, self.index.get()),
        })
    }

    /// The sender's User-Agent header (already cut to `MAX_USER_AGENT`).
    pub fn sender_user_agent(&self) -> Option<&'a str> {
        self.user_agent
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
            None => Ok(self.stored_ip.clone()),
            Some(s) => {
                let ip = s
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
    pub fn timestamp(&self, t: Option<JsonInt>) -> Result<i64, FieldError> {
        match t {
            None => Ok(self.now_ms()),
            Some(JsonInt(t)) => event_time::client_ms(t, "timestamp"),
        }
    }

    /// Server time in epoch microseconds. A client may backfill it; an instant after now
    /// is recorded as now, so no row waits in the future for the windows to reach it.
    pub fn created_at(&self, c: Option<DateTime<Utc>>) -> Result<i64, FieldError> {
        Ok(c.map_or(self.now_us, |c| c.timestamp_micros().min(self.now_us)))
    }
}

/// Declares an ingest item struct with the three client time fields every stream takes
/// (`timestamp`, `sent_at`, `created_at`, read with `Ctx::times`) after its own fields.
/// A macro, not a flattened struct: serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, which turns a misspelt field into a clear 422.
macro_rules! ingest_item {
    // `who`: the item also names who acted (`id`, `user_id`, `session_id`) before its own fields.
    (who $(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $crate::http::ingest::ingest_item! {
        $(#[$m])*
        $vis struct $name {
            /// Default: a new UUID.
            id: Option<::uuid::Uuid>,
            /// The app's own id for the person; without it a cookieless visitor id is derived.
            #[serde(alias = "userId")]
            #[schema(inline)]
            user_id: Option<$crate::http::ingest::UserId>,
            #[serde(alias = "sessionId")]
            #[schema(max_length = 256)]
            session_id: Option<String>,
            $($body)*
        }
        }
    };
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        $vis struct $name {
            $($body)*
            /// When it happened by the client's clock, milliseconds since the Unix epoch (2000
            /// to 2100); default now. Reads order and filter by the event time derived from it.
            #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
            timestamp: Option<$crate::http::ingest::JsonInt>,
            /// The client's clock when it sent this item (or its batch), milliseconds since the
            /// Unix epoch (2000 to 2100). With `timestamp`, corrects the client's clock skew:
            /// event time = receive time - (sent_at - timestamp). Also accepted once per request as `?sent_at=`.
            #[serde(alias = "sentAt")]
            #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
            sent_at: Option<$crate::http::ingest::JsonInt>,
            /// Server time the row is filed under; default now, and a later instant is recorded as now.
            #[serde(alias = "createdAt")]
            created_at: Option<::chrono::DateTime<::chrono::Utc>>,
        }
    };
}
pub(crate) use ingest_item;

/// A row's times; see `Ctx::times`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub timestamp: i64,
    pub created_at: i64,
    pub event_time: i64,
}

/// A whole number in a JSON body, written `42` or `42.0`: JSON Schema's `integer` counts
/// both, and JavaScript clients send either, so both are accepted; `42.5` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonInt(pub i64);

impl<'de> Deserialize<'de> for JsonInt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = JsonInt;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<JsonInt, E> {
                Ok(JsonInt(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<JsonInt, E> {
                i64::try_from(n)
                    .map(JsonInt)
                    .map_err(|_| E::custom(format!("{n} is too large")))
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<JsonInt, E> {
                // Only where f64 still counts by ones: beyond 2^53 a float is not one
                // number (and serde_json reads integers past i64 as floats).
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if f.fract() == 0.0 && f.abs() <= EXACT {
                    Ok(JsonInt(f as i64))
                } else {
                    Err(E::custom(format!("{f} is not a whole number in range")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A user id as apps send it: a string ("user-42", a UUID) or an integer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserId {
    Text(String),
    Number(JsonInt),
}

impl utoipa::PartialSchema for UserId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(MAX_SHORT)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(i64::MIN))
                    .maximum(Some(i64::MAX)),
            )
            .description(Some(
                "The app's own id for the person: a string (up to 256 characters) or an integer",
            ))
            .into()
    }
}
impl ToSchema for UserId {}

pub fn user_id(v: Option<UserId>) -> Result<Option<String>, FieldError> {
    match v {
        None => Ok(None),
        Some(UserId::Number(n)) => Ok(Some(n.0.to_string())),
        Some(UserId::Text(s)) => {
            // The length is checked as sent, so the schema's maxLength states the rule.
            let s = text(Some(s), "user_id", MAX_SHORT)?.unwrap_or_default();
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
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

/// A required text: at least one character (the schema's `minLength: 1`), at most `max`.
pub fn required(v: String, field: &'static str, max: usize) -> Result<String, FieldError> {
    if v.is_empty() {
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

pub fn count(v: Option<JsonInt>, field: &'static str) -> Result<Option<i32>, FieldError> {
    v.map(|JsonInt(n)| {
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

/// The answer to an ingest call, sent only after the rows are committed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Items stored.
    pub accepted: usize,
    /// Items ignored on purpose (performance: Next.js custom timings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<usize>,
    /// Items dropped because their user agent is a crawler (events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bots: Option<usize>,
}

/// The handler behind every `POST /api/analytics/...`: read the body (one object or an
/// array, JSON or a `text/plain` beacon), turn every item into a row, then append them
/// as one batch and answer after the commit. A batch with one bad item writes nothing.
pub async fn handler<T: IngestItem>(
    State(state): State<AppState>,
    sender: Sender,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let cfg = &state.config.ingest;
    let bytes = body::read(&headers, body, cfg.body_limit).await?;
    let (items, is_batch) = body::parse_items::<T>(&bytes, cfg.max_batch)?;
    let sent_at = event_time::sent_at_query(query.as_deref())
        .map_err(|e| ApiError::invalid(None, e.field, e.message))?;
    let ctx = Ctx::new(&sender, &state.privacy, Utc::now()).with_sent_at(sent_at);
    let scope = T::scope(&state, &headers);
    let mut rows = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for (i, item) in items.into_iter().enumerate() {
        ctx.set_index(i);
        match item.into_row(&ctx, &scope) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => skipped += 1,
            Err(e) => return Err(ApiError::invalid(is_batch.then_some(i), e.field, e.message)),
        }
    }
    let accepted = rows.len();
    if accepted > 0 {
        state.store.append(T::into_batch(rows)).await?;
    }
    Ok(Json(Accepted {
        accepted,
        ignored: (T::SKIPPED == Skipped::Ignored).then_some(skipped),
        bots: (T::SKIPPED == Skipped::Bots && skipped > 0).then_some(skipped),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The field checks on arbitrary text: a value or a clear error, never a panic.
        #[test]
        fn text_checks_never_panic(s in "\\PC*", n in any::<i64>(), f in any::<f64>()) {
            let _ = user_id(Some(UserId::Text(s.clone())));
            let _ = user_id(Some(UserId::Number(JsonInt(n))));
            let _ = text(Some(s.clone()), "x", 8);
            let _ = required(s.clone(), "x", 8);
            let _ = duration(f, "x");
            let _ = count(Some(JsonInt(n)), "x");
            let _ = serde_json::from_str::<JsonInt>(&s);
            let _ = serde_json::from_str::<JsonInt>(&f.to_string());
            let _ = properties(serde_json::from_str(&s).ok());
        }
    }

    #[test]
    fn user_id_length_is_checked_as_sent() {
        let long = format!(" {} ", "u".repeat(MAX_SHORT - 1));
        assert!(user_id(Some(UserId::Text(long))).is_err());
        assert_eq!(user_id(Some(UserId::Text("  ".into()))).unwrap(), None);
        assert_eq!(
            user_id(Some(UserId::Text(" u1 ".into())))
                .unwrap()
                .as_deref(),
            Some("u1")
        );
    }
}
