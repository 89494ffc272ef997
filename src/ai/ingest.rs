//! One AI call's metrics as apps report them, and their validation.

use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::ingest::{
    count, duration, ingest_item, text, Ctx, FieldError, IngestItem, JsonInt, MAX_SHORT, MAX_TEXT,
};
use crate::http::openapi::IpText;
use crate::state::AppState;
use crate::store::{AiRow, Batch};

ingest_item! {
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
}
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
