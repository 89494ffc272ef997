//! One AI call's metrics as apps report them, and their validation.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::ingest::{
    count, duration, text, Ctx, FieldError, IngestItem, MAX_SHORT, MAX_TEXT,
};
use crate::store::{AiRow, Batch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiMetricIn {
    id: Option<Uuid>,
    #[serde(alias = "requestId")]
    request_id: Option<String>,
    endpoint: Option<String>,
    model: Option<String>,
    tokens: Option<i64>,
    duration: f64,
    success: Option<bool>,
    error: Option<String>,
    #[serde(alias = "cacheHit")]
    cache_hit: Option<bool>,
    #[serde(alias = "userId")]
    user_id: Option<String>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for AiMetricIn {
    type Row = AiRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<AiRow, FieldError> {
        // A reported error means the call failed unless the client says otherwise.
        let success = self.success.unwrap_or(self.error.is_none());
        Ok(AiRow {
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
            ip: ctx.ip(self.ip)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
            ..Default::default()
        })
    }

    fn into_batch(rows: Vec<AiRow>) -> Batch {
        Batch::Ai(rows)
    }
}
