//! One query timing as apps report it, and its validation.

use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::fingerprint::memo;
use crate::http::ingest::{
    count, duration, ingest_item, required, text, user_id, Ctx, FieldError, IngestItem, JsonInt,
    UserId, MAX_QUERY, MAX_SHORT, MAX_URL,
};
use crate::http::openapi::IpText;
use crate::state::AppState;
use crate::store::{Batch, DatabaseRow};

ingest_item! {
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
    /// The request (page load, API call) this query ran for: the same query at least 5
    /// times in one request, over 50 ms in all, is an N+1 finding.
    #[serde(alias = "requestId")]
    #[schema(max_length = 256)]
    request_id: Option<String>,
    /// The route template the request served, e.g. `/recipes/:id`.
    #[schema(max_length = 2048)]
    route: Option<String>,
    /// Where in the app's code the query was made, e.g. `src/recipes.ts:42`.
    #[schema(max_length = 256)]
    source: Option<String>,
}
}

impl IngestItem for QueryTimingIn {
    type Row = DatabaseRow;
    /// Whether stored query texts keep their literals (`database.store_literals`).
    type Scope<'a> = bool;

    fn scope<'a>(state: &'a AppState, _: &'a HeaderMap) -> bool {
        state.config.database.store_literals
    }

    fn into_row(self, ctx: &Ctx<'_>, literals: &bool) -> Result<Option<DatabaseRow>, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
        let query = required(self.query, "query", MAX_QUERY)?;
        let f = memo().get(&query);
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Ok(Some(DatabaseRow {
            id: ctx.id(self.id),
            query: if *literals { query } else { f.text.clone() },
            fingerprint: Some(f.id),
            normalized_query: Some(f.text),
            request_id: nonempty(text(self.request_id, "request_id", MAX_SHORT)?),
            route: nonempty(text(self.route, "route", MAX_URL)?),
            source: nonempty(text(self.source, "source", MAX_SHORT)?),
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
