//! Events and conversions as apps send them (`analytics.track`, `analytics.conversion`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::ingest::{
    properties, required, text, Ctx, FieldError, IngestItem, MAX_SHORT, MAX_URL,
};
use crate::store::{Batch, ConversionRow, EventRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<Uuid>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    event: String,
    properties: Option<serde_json::Value>,
    route: Option<String>,
    referrer: Option<String>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for EventIn {
    type Row = EventRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<EventRow, FieldError> {
        Ok(EventRow {
            id: ctx.id(self.id),
            user_id: self.user_id,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            event: required(self.event, "event", MAX_SHORT)?,
            properties: properties(self.properties)?,
            route: text(self.route, "route", MAX_URL)?,
            referrer: text(self.referrer, "referrer", MAX_URL)?,
            user_agent: ctx.user_agent(self.user_agent)?,
            ip: ctx.ip(self.ip)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        })
    }

    fn into_batch(rows: Vec<EventRow>) -> Batch {
        Batch::Events(rows)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<Uuid>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    funnel: String,
    step: String,
    #[serde(alias = "props")]
    properties: Option<serde_json::Value>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for ConversionIn {
    type Row = ConversionRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<ConversionRow, FieldError> {
        Ok(ConversionRow {
            id: ctx.id(self.id),
            user_id: self.user_id,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            funnel: required(self.funnel, "funnel", MAX_SHORT)?,
            step: required(self.step, "step", MAX_SHORT)?,
            properties: properties(self.properties)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        })
    }

    fn into_batch(rows: Vec<ConversionRow>) -> Batch {
        Batch::Conversions(rows)
    }
}
