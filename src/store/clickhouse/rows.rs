//! Rows as JSONEachRow lines, in the column layout of `migrations/clickhouse/`.

use serde::Serialize;

use crate::store::rows::{Batch, ConversionRow, EventRow};
use crate::store::Stream;

/// The ClickHouse table a batch goes to, when this engine stores it.
pub fn table_of(batch: &Batch) -> Option<&'static str> {
    match batch {
        Batch::Events(_) => Some("user_events"),
        Batch::Conversions(_) => Some("conversions"),
        _ => None,
    }
}

/// The ClickHouse table of `stream`, when this engine stores it.
pub fn table_of_stream(stream: Stream) -> Option<&'static str> {
    match stream {
        Stream::Events => Some("user_events"),
        Stream::Conversions => Some("conversions"),
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
        _ => Ok(()),
    }
}
