//! One AI call's metrics as apps report them, and their validation.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::ingest::{
    count, duration, text, Ctx, FieldError, IngestItem, JsonInt, MAX_SHORT, MAX_TEXT,
};
use crate::http::openapi::IpText;
use crate::state::AppState;
use crate::store::{AiRow, Batch};

/// One AI call as an app reports it. Multi-word fields also accept their camelCase spelling.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AiCall)]
pub struct AiMetricIn {
    /// Default: a new UUID.
    id: Option<Uuid>,
    #[serde(alias = "requestId")]
    #[schema(max_length = 256)]
    request_id: Option<String>,
    #[schema(max_length = 256)]
    endpoint: Option<String>,
    #[schema(max_length = 256)]
    model: Option<String>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    tokens: Option<JsonInt>,
    /// Milliseconds.
    #[schema(minimum = 0, maximum = 86400000)]
    duration: f64,
    /// Default: true unless `error` is given.
    success: Option<bool>,
    #[schema(max_length = 4096)]
    error: Option<String>,
    #[serde(alias = "cacheHit")]
    cache_hit: Option<bool>,
    #[serde(alias = "userId")]
    #[schema(max_length = 256)]
    user_id: Option<String>,
    #[schema(inline)]
    ip: Option<IpText>,
    /// When it happened by the client's clock, milliseconds since the Unix epoch (2000 to
    /// 2100); default now. Analytics order and filter by the event time derived from it.
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    timestamp: Option<JsonInt>,
    /// The client's clock when it sent this item (or its batch), milliseconds since the
    /// Unix epoch (2000 to 2100). With `timestamp`, corrects the client's clock skew:
    /// event time = receive time - (sent_at - timestamp). Also accepted once per request as `?sent_at=`.
    #[serde(alias = "sentAt")]
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    sent_at: Option<JsonInt>,
    /// Server time the row is filed under; default now, and a later instant is recorded as now.
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for AiMetricIn {
    type Row = AiRow;
    type Scope<'a> = ();

    fn scope<'a>(_: &'a AppState, _: &'a HeaderMap) {}

    fn into_row(self, ctx: &Ctx<'_>, _: &()) -> Result<Option<AiRow>, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
        // A reported error means the call failed unless the client says otherwise.
        let success = self.success.unwrap_or(self.error.is_none());
        Ok(Some(AiRow {
            id: ctx.id(self.id),
            request_id: text(self.request_id, "request_id", MAX_SHORT)?,
            endpoint: text(self.endpoint, "endpoint", MAX_SHORT)?,
            model: text(self.model, "model", MAX_SHORT)?,
            tokens: count(self.tokens, "tokens")?,
            duration: duration(self.duration, "duration")?,
            success,
            error: text(self.error, "error", MAX_TEXT)?,
            cache_hit: self.cache_hit.unwrap_or(false),
            user_id: text(self.user_id, "user_id", MAX_SHORT)?,
            ip: ctx.ip(self.ip.map(|i| i.0))?,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
            ..Default::default()
        }))
    }

    fn into_batch(rows: Vec<AiRow>) -> Batch {
        Batch::Ai(rows)
    }
}
