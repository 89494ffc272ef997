//! The errors stream: JavaScript errors gs.js reports (`POST /api/analytics/errors`), the
//! 5xx answers of this server and its AI gateway (recorded by a middleware), and the read
//! behind the Performance page's top errors.

use std::time::Instant;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use duckdb::params;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use axum::http::HeaderMap;
use utoipa::ToSchema;

use crate::http::ingest::{
    count, required, text, Ctx, FieldError, IngestItem, JsonInt, MAX_SHORT, MAX_URL,
};
use crate::http::Window;
use crate::state::AppState;
use crate::store::{query_json, ts_param, Batch, ErrorRow, JsonRow, Store, StoreError};

const MAX_STACK: usize = 8 * 1024;
const MAX_MESSAGE: usize = 1024;

/// One JavaScript error, as gs.js (or an app's own `window.onerror`) sends it. Multi-word
/// fields also accept their camelCase spelling, and `filename`, `lineno`, `colno` (the
/// names of an `ErrorEvent`) are read as `source`, `line`, `col`. A message or URL longer
/// than its limit is cut, not refused, so one odd error never loses its batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = JsError)]
pub struct ErrorIn {
    /// Default: a new UUID.
    id: Option<Uuid>,
    /// What was thrown; the first 1024 characters are kept.
    #[schema(min_length = 1)]
    message: String,
    /// The script URL; its query string is dropped.
    #[serde(alias = "filename")]
    source: Option<String>,
    #[serde(alias = "lineno")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    line: Option<JsonInt>,
    #[serde(alias = "colno", alias = "column")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    col: Option<JsonInt>,
    #[schema(max_length = 32768)]
    stack: Option<String>,
    /// The page path; a query string is dropped.
    #[serde(alias = "path")]
    route: Option<String>,
    #[serde(alias = "sessionId")]
    #[schema(max_length = 256)]
    session_id: Option<String>,
    #[serde(alias = "userAgent")]
    #[schema(max_length = 512)]
    user_agent: Option<String>,
    /// Client clock, milliseconds since the Unix epoch (2000 to 2100); default now.
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    timestamp: Option<JsonInt>,
    /// Server time the row is filed under; default now, and a later instant is recorded as now.
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

/// Occurrences of one error share this: kind, message, source and line.
pub fn error_fingerprint(
    kind: &str,
    message: &str,
    source: Option<&str>,
    line: Option<i32>,
) -> String {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("kind".to_string(), kind.to_string());
    labels.insert("message".to_string(), message.to_string());
    labels.insert("source".to_string(), source.unwrap_or("").to_string());
    labels.insert(
        "line".to_string(),
        line.map(|l| l.to_string()).unwrap_or_default(),
    );
    super::fingerprint(&labels)
}

/// The URL or path without its query string and fragment (cut at an ASCII character,
/// so at a character boundary).
fn strip_query(s: String) -> String {
    match s.split_once(['?', '#']) {
        Some((head, _)) => head.to_string(),
        None => s,
    }
}

impl IngestItem for ErrorIn {
    type Row = ErrorRow;
    type Scope<'a> = ();

    fn scope<'a>(_: &'a AppState, _: &'a HeaderMap) {}

    fn into_row(self, ctx: &Ctx<'_>, _: &()) -> Result<Option<ErrorRow>, FieldError> {
        // A page's errors are what they are: long ones are cut, not refused (the first
        // kilobyte names the error), so one odd error never loses its batch.
        let message: String = self.message.chars().take(MAX_MESSAGE).collect();
        let message = required(message, "message", MAX_MESSAGE)?;
        let source = self
            .source
            .map(|s| strip_query(s).chars().take(MAX_URL).collect::<String>());
        let line = count(self.line, "line")?;
        Ok(Some(ErrorRow {
            id: ctx.id(self.id),
            kind: "js",
            fingerprint: error_fingerprint("js", &message, source.as_deref(), line),
            message,
            source,
            line,
            col: count(self.col, "col")?,
            stack: text(self.stack, "stack", MAX_STACK * 4)?
                .map(|s| s.chars().take(MAX_STACK).collect()),
            route: self
                .route
                .map(|s| strip_query(s).chars().take(MAX_URL).collect()),
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            user_agent: ctx.user_agent(self.user_agent)?,
            status: None,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        }))
    }

    fn into_batch(rows: Vec<ErrorRow>) -> Batch {
        Batch::Errors(rows)
    }
}

/// Records a 5xx this server answered (the AI gateway's included) as a server error. The
/// row is written after the answer has gone, so it costs the request nothing.
pub fn record_server_error(store: &Store, method: &Method, path: &str, status: StatusCode) {
    let started = Instant::now();
    let now = Utc::now();
    let row = ErrorRow {
        id: Uuid::new_v4(),
        kind: "server",
        fingerprint: error_fingerprint(
            "server",
            &format!("{} {method}", status.as_u16()),
            Some(path),
            None,
        ),
        message: format!("{} {method} {path}", status.as_u16()),
        source: None,
        line: None,
        col: None,
        stack: None,
        route: Some(path.chars().take(MAX_URL).collect()),
        session_id: None,
        user_agent: None,
        status: Some(status.as_u16() as i16),
        timestamp: now.timestamp_millis(),
        created_at: now.timestamp_micros(),
    };
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.append(Batch::Errors(vec![row])).await {
            tracing::debug!(error = %e, ms = started.elapsed().as_millis() as u64, "server error not recorded");
        }
    });
}

#[derive(Debug, Serialize)]
pub struct TopErrors {
    pub from: String,
    pub to: String,
    pub js_errors: i64,
    pub server_errors: i64,
    pub page_views: i64,
    /// JavaScript errors per page view, percent.
    pub error_rate: Option<f64>,
    /// Most frequent first.
    pub top: Vec<JsonRow>,
}

impl TopErrors {
    /// The answer from the window's counts and top rows, whichever engine read them.
    pub fn of(w: &Window, js: i64, server: i64, views: i64, top: Vec<JsonRow>) -> TopErrors {
        TopErrors {
            from: w.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to: w.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            js_errors: js,
            server_errors: server,
            page_views: views,
            error_rate: (views > 0).then(|| js as f64 * 100.0 / views as f64),
            top,
        }
    }
}

/// `GET /api/analytics/errors` on DuckDB: counts and the most frequent errors in the
/// window (its ClickHouse twin is `clickhouse::top_errors`).
pub async fn top(store: &Store, w: Window) -> Result<TopErrors, StoreError> {
    let (from, to) = (w.from_us(), w.to_us());
    let limit = i64::from(w.limit);
    let offset = i64::from(w.offset);
    store
        .query(move |c| {
            let (js, server): (i64, i64) = c.query_row(
                "SELECT count(*) FILTER (WHERE kind = 'js'), count(*) FILTER (WHERE kind = 'server') \
                 FROM app_errors WHERE created_at >= ? AND created_at < ?",
                params![ts_param(from), ts_param(to)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let views: i64 = c.query_row(
                "SELECT count(*) FROM user_events WHERE event = 'pageview' AND created_at >= ? AND created_at < ?",
                params![ts_param(from), ts_param(to)],
                |r| r.get(0),
            )?;
            let top = query_json(
                c,
                "SELECT fingerprint, kind, any_value(message) AS message, any_value(source) AS source, \
                 any_value(line) AS line, any_value(col) AS col, any_value(status) AS status, \
                 count(*) AS count, count(DISTINCT session_id) AS sessions, \
                 left(string_agg(DISTINCT route, ' '), 300) AS routes, min(created_at) AS first_seen, \
                 max(created_at) AS last_seen, arg_max(stack, created_at) AS stack \
                 FROM app_errors WHERE created_at >= ? AND created_at < ? \
                 GROUP BY fingerprint, kind ORDER BY count DESC, last_seen DESC LIMIT ? OFFSET ?",
                params![ts_param(from), ts_param(to), limit, offset],
                &[],
            )?;
            Ok(TopErrors::of(&w, js, server, views, top))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_strings_are_dropped() {
        assert_eq!(strip_query("/a?b=1#c".into()), "/a");
        assert_eq!(strip_query("/a#c?d".into()), "/a");
        assert_eq!(strip_query("/å".into()), "/å");
    }

    proptest! {
        /// Any text: a prefix of it without `?` or `#`, never a panic.
        #[test]
        fn strip_query_keeps_a_prefix(s in "\\PC*") {
            let out = strip_query(s.clone());
            prop_assert!(s.starts_with(&out));
            prop_assert!(!out.contains(['?', '#']));
            let _ = error_fingerprint("js", &s, Some(&s), Some(1));
        }
    }
}
