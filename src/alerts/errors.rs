//! The errors stream: JavaScript errors gs.js reports (`POST /api/analytics/errors`), the
//! 5xx answers of this server and its AI gateway (recorded by a middleware), and the read
//! behind the Performance page's top errors.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use duckdb::params;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::ingest::{
    field_error, required, text, Ctx, FieldError, IngestItem, MAX_SHORT, MAX_URL,
};
use crate::http::Window;
use crate::state::AppState;
use crate::store::{query_json, ts_param, Batch, ErrorRow, JsonRow, Store, StoreError};

const MAX_STACK: usize = 8 * 1024;
const MAX_MESSAGE: usize = 1024;

/// One JavaScript error, as gs.js (or an app's own `window.onerror`) sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorIn {
    id: Option<Uuid>,
    message: String,
    /// The script URL (`filename` in an ErrorEvent).
    #[serde(alias = "filename")]
    source: Option<String>,
    #[serde(alias = "lineno")]
    line: Option<i64>,
    #[serde(alias = "colno", alias = "column")]
    col: Option<i64>,
    stack: Option<String>,
    /// The page path (no query string).
    #[serde(alias = "path")]
    route: Option<String>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

fn position(v: Option<i64>, field: &'static str) -> Result<Option<i32>, FieldError> {
    v.map(|n| {
        i32::try_from(n)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| field_error(field, "must be an integer >= 0"))
    })
    .transpose()
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

fn strip_query(s: String) -> String {
    match s.find(['?', '#']) {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl IngestItem for ErrorIn {
    type Row = ErrorRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<ErrorRow, FieldError> {
        // A page's errors are what they are: long ones are cut, not refused (the first
        // kilobyte names the error), so one odd error never loses its batch.
        let message: String = self.message.chars().take(MAX_MESSAGE).collect();
        let message = required(message, "message", MAX_MESSAGE)?;
        let source = self
            .source
            .map(|s| strip_query(s).chars().take(MAX_URL).collect::<String>());
        let line = position(self.line, "line")?;
        Ok(ErrorRow {
            id: ctx.id(self.id),
            kind: "js",
            fingerprint: error_fingerprint("js", &message, source.as_deref(), line),
            message,
            source,
            line,
            col: position(self.col, "col")?,
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
        })
    }

    fn into_batch(rows: Vec<ErrorRow>) -> Batch {
        Batch::Errors(rows)
    }
}

/// Records every 5xx this server answers (the AI gateway's included) as a server error.
/// The row is written after the answer has gone, so it costs the request nothing.
pub async fn record_server_errors(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_server_error() {
        let now = Utc::now();
        let message = format!("{} {method} {path}", status.as_u16());
        let row = ErrorRow {
            id: Uuid::new_v4(),
            kind: "server",
            fingerprint: error_fingerprint(
                "server",
                &format!("{} {method}", status.as_u16()),
                Some(&path),
                None,
            ),
            message,
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
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append(Batch::Errors(vec![row])).await {
                tracing::debug!(error = %e, ms = started.elapsed().as_millis() as u64, "server error not recorded");
            }
        });
    }
    resp
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

/// `GET /api/analytics/errors`: counts and the most frequent errors in the window.
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
            Ok(TopErrors {
                from: w.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                to: w.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                js_errors: js,
                server_errors: server,
                page_views: views,
                error_rate: (views > 0).then(|| js as f64 * 100.0 / views as f64),
                top,
            })
        })
        .await
}
