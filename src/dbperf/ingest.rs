//! One query timing as apps report it, and its validation.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::ingest::{
    count, duration, required, user_id, Ctx, FieldError, IngestItem, JsonInt, UserId, MAX_QUERY,
};
use crate::http::openapi::IpText;
use crate::state::AppState;
use crate::store::{Batch, DatabaseRow};

/// One query's timing. Multi-word fields also accept their camelCase spelling.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QueryTiming)]
pub struct QueryTimingIn {
    /// Default: a new UUID.
    id: Option<Uuid>,
    /// The SQL text (or a name for it).
    #[schema(min_length = 1, max_length = 16384)]
    query: String,
    /// Milliseconds.
    #[schema(minimum = 0, maximum = 86400000)]
    duration: f64,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    rows: Option<JsonInt>,
    cached: Option<bool>,
    #[serde(alias = "userId")]
    #[schema(inline)]
    user_id: Option<UserId>,
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

impl IngestItem for QueryTimingIn {
    type Row = DatabaseRow;
    type Scope<'a> = ();

    fn scope<'a>(_: &'a AppState, _: &'a HeaderMap) {}

    fn into_row(self, ctx: &Ctx<'_>, _: &()) -> Result<Option<DatabaseRow>, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
        Ok(Some(DatabaseRow {
            id: ctx.id(self.id),
            query: required(self.query, "query", MAX_QUERY)?,
            duration: duration(self.duration, "duration")?,
            rows: count(self.rows, "rows")?,
            cached: self.cached.unwrap_or(false),
            user_id: user_id(self.user_id)?,
            ip: ctx.ip(self.ip.map(|i| i.0))?,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
        }))
    }

    fn into_batch(rows: Vec<DatabaseRow>) -> Batch {
        Batch::Database(rows)
    }
}
