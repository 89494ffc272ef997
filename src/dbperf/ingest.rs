//! One query timing as apps report it, and its validation.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::ingest::{
    count, duration, required, user_id, Ctx, FieldError, IngestItem, UserId, MAX_QUERY,
};
use crate::store::{Batch, DatabaseRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryTimingIn {
    id: Option<Uuid>,
    query: String,
    duration: f64,
    rows: Option<i64>,
    cached: Option<bool>,
    #[serde(alias = "userId")]
    user_id: Option<UserId>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for QueryTimingIn {
    type Row = DatabaseRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<DatabaseRow, FieldError> {
        Ok(DatabaseRow {
            id: ctx.id(self.id),
            query: required(self.query, "query", MAX_QUERY)?,
            duration: duration(self.duration, "duration")?,
            rows: count(self.rows, "rows")?,
            cached: self.cached.unwrap_or(false),
            user_id: user_id(self.user_id)?,
            ip: ctx.ip(self.ip)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        })
    }

    fn into_batch(rows: Vec<DatabaseRow>) -> Batch {
        Batch::Database(rows)
    }
}
