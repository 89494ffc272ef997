//! Rows as JSONEachRow lines, in the column layout of `migrations/clickhouse/`.

use serde::Serialize;

use crate::store::rows::{AiRow, Batch, ConversionRow, DatabaseRow, EventRow};

/// The ClickHouse table a batch goes to, when this engine stores it.
pub fn table_of(batch: &Batch) -> Option<&'static str> {
    match batch {
        Batch::Events(_) => Some("user_events"),
        Batch::Conversions(_) => Some("conversions"),
        Batch::Ai(_) => Some("ai_performance_metrics"),
        Batch::Database(_) => Some("database_performance_metrics"),
        _ => None,
    }
}

fn us(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[derive(Serialize)]
struct Event<'a> {
    id: String,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    event: &'a str,
    properties: Option<&'a str>,
    route: Option<&'a str>,
    referrer: Option<&'a str>,
    user_agent: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    visitor_id: &'a str,
    feature: Option<&'a str>,
    browser: Option<&'a str>,
    os: Option<&'a str>,
    device: Option<&'a str>,
    referrer_domain: Option<&'a str>,
    utm_source: Option<&'a str>,
    utm_medium: Option<&'a str>,
    utm_campaign: Option<&'a str>,
    event_time: u64,
    /// Seconds: the DateTime twin of `event_time` (see the migration).
    event_at: u64,
}

impl<'a> From<&'a EventRow> for Event<'a> {
    fn from(r: &'a EventRow) -> Self {
        Event {
            id: r.id.hyphenated().to_string(),
            user_id: r.user_id.as_deref(),
            session_id: r.session_id.as_deref(),
            event: &r.event,
            properties: r.properties.as_deref(),
            route: r.route.as_deref(),
            referrer: r.referrer.as_deref(),
            user_agent: r.user_agent.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            visitor_id: r.visitor_id.as_deref().unwrap_or_default(),
            feature: r.feature.as_deref(),
            browser: r.browser.as_deref(),
            os: r.os.as_deref(),
            device: r.device.as_deref(),
            referrer_domain: r.referrer_domain.as_deref(),
            utm_source: r.utm_source.as_deref(),
            utm_medium: r.utm_medium.as_deref(),
            utm_campaign: r.utm_campaign.as_deref(),
            event_time: us(r.event_time.unwrap_or(r.created_at)),
            event_at: us(r.event_time.unwrap_or(r.created_at)) / 1_000_000,
        }
    }
}

#[derive(Serialize)]
struct Conversion<'a> {
    id: String,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    funnel: &'a str,
    step: &'a str,
    timestamp: i64,
    created_at: u64,
    properties: Option<&'a str>,
    visitor_id: &'a str,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a ConversionRow> for Conversion<'a> {
    fn from(r: &'a ConversionRow) -> Self {
        Conversion {
            id: r.id.hyphenated().to_string(),
            user_id: r.user_id.as_deref(),
            session_id: r.session_id.as_deref(),
            funnel: &r.funnel,
            step: &r.step,
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            properties: r.properties.as_deref(),
            visitor_id: r.visitor_id.as_deref().unwrap_or_default(),
            event_time: us(r.event_time.unwrap_or(r.created_at)),
            event_at: us(r.event_time.unwrap_or(r.created_at)) / 1_000_000,
        }
    }
}

/// `event_time` and its DateTime twin `event_at` (seconds) of a row that may lack one.
fn event_time(event_time: Option<i64>, created_at: i64) -> (u64, u64) {
    let t = us(event_time.unwrap_or(created_at));
    (t, t / 1_000_000)
}

#[derive(Serialize)]
struct Ai<'a> {
    id: String,
    request_id: Option<&'a str>,
    endpoint: Option<&'a str>,
    model: Option<&'a str>,
    tokens: Option<i32>,
    duration: f64,
    success: u8,
    error: Option<&'a str>,
    cache_hit: u8,
    user_id: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    provider: Option<&'a str>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    ttft: Option<f64>,
    cost: Option<f64>,
    stream: Option<u8>,
    demo: Option<u8>,
    tokens_saved: Option<i32>,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a AiRow> for Ai<'a> {
    fn from(r: &'a AiRow) -> Self {
        let (event_time, event_at) = event_time(r.event_time, r.created_at);
        Ai {
            id: r.id.hyphenated().to_string(),
            request_id: r.request_id.as_deref(),
            endpoint: r.endpoint.as_deref(),
            model: r.model.as_deref(),
            tokens: r.tokens,
            duration: r.duration,
            success: u8::from(r.success),
            error: r.error.as_deref(),
            cache_hit: u8::from(r.cache_hit),
            user_id: r.user_id.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            provider: r.provider.as_deref(),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            ttft: r.ttft,
            cost: r.cost,
            stream: r.stream.map(u8::from),
            demo: r.demo.map(u8::from),
            tokens_saved: r.tokens_saved,
            event_time,
            event_at,
        }
    }
}

#[derive(Serialize)]
struct Database<'a> {
    id: String,
    query: &'a str,
    duration: f64,
    rows: Option<i32>,
    cached: u8,
    user_id: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    fingerprint: Option<&'a str>,
    normalized_query: Option<&'a str>,
    request_id: Option<&'a str>,
    route: Option<&'a str>,
    source: Option<&'a str>,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a DatabaseRow> for Database<'a> {
    fn from(r: &'a DatabaseRow) -> Self {
        let (event_time, event_at) = event_time(r.event_time, r.created_at);
        Database {
            id: r.id.hyphenated().to_string(),
            query: &r.query,
            duration: r.duration,
            rows: r.rows,
            cached: u8::from(r.cached),
            user_id: r.user_id.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            fingerprint: r.fingerprint.as_deref(),
            normalized_query: r.normalized_query.as_deref(),
            request_id: r.request_id.as_deref(),
            route: r.route.as_deref(),
            source: r.source.as_deref(),
            event_time,
            event_at,
        }
    }
}

/// Appends the batch's rows to `out`, one JSON object per line.
pub fn encode(batch: &Batch, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    fn lines<T: Serialize>(
        out: &mut Vec<u8>,
        rows: impl Iterator<Item = T>,
    ) -> serde_json::Result<()> {
        for row in rows {
            serde_json::to_writer(&mut *out, &row)?;
            out.push(b'\n');
        }
        Ok(())
    }
    match batch {
        Batch::Events(rows) => lines(out, rows.iter().map(Event::from)),
        Batch::Conversions(rows) => lines(out, rows.iter().map(Conversion::from)),
        Batch::Ai(rows) => lines(out, rows.iter().map(Ai::from)),
        Batch::Database(rows) => lines(out, rows.iter().map(Database::from)),
        _ => Ok(()),
    }
}
