//! Reads over `user_events` and `conversions`: totals, top events, funnel steps, newest rows.

use duckdb::{params, Connection};
use serde::Serialize;

use crate::http::window::{Report, Window};
use crate::store::{newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError};

const EVENTS: &str = "user_events";
const EVENT_COLUMNS: &str =
    "id::VARCHAR AS id, user_id, session_id, event, properties, \
    route, referrer, user_agent, ip, timestamp, created_at, event_time, visitor_id, feature, browser, os, device, \
    referrer_domain, utm_source, utm_medium, utm_campaign";
const CONVERSIONS: &str = "conversions";
const CONVERSION_COLUMNS: &str = "id::VARCHAR AS id, user_id, session_id, funnel, step, \
    properties, timestamp, created_at, visitor_id, event_time";
const TOP_EVENTS: u32 = 20;
const TOP_STEPS: u32 = 100;

pub type EventSummary = Report<EventStats>;

#[derive(Debug, Serialize)]
pub struct EventStats {
    pub totals: EventTotals,
    /// Most frequent first, with distinct users per event.
    pub top_events: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct EventTotals {
    pub events: u64,
    /// Distinct people: user ids, and visitor ids of anonymous senders.
    pub users: u64,
    pub sessions: u64,
    pub event_types: u64,
    pub conversions: u64,
}

pub type ConversionSummary = Report<ConversionStats>;

#[derive(Debug, Serialize)]
pub struct ConversionStats {
    pub totals: ConversionTotals,
    /// Per funnel and step: conversions and distinct users.
    pub steps: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct ConversionTotals {
    pub conversions: u64,
    pub users: u64,
    pub funnels: u64,
}

pub async fn events(store: &Store, window: Window) -> Result<EventSummary, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return super::clickhouse::events(ch, &window).await;
    }
    store.query(move |conn| events_sync(conn, &window)).await
}

pub async fn conversions(store: &Store, window: Window) -> Result<ConversionSummary, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return super::clickhouse::conversions(ch, &window).await;
    }
    store
        .query(move |conn| conversions_sync(conn, &window))
        .await
}

/// What the dashboard's overview shows of growth: event totals and the events trend.
#[derive(Debug, Serialize)]
pub struct Headline {
    pub events: HeadlineTotals,
    /// Events and people per bucket, as on the events page.
    pub series: Vec<JsonRow>,
}

#[derive(Debug, Serialize)]
pub struct HeadlineTotals {
    pub total: u64,
    /// People, counted by `visitor_id` like the growth pages: the user id when the event
    /// carries one, else the cookieless visitor id.
    pub users: u64,
    pub sessions: u64,
    pub conversions: u64,
}

pub async fn headline(store: &Store, window: Window) -> Result<Headline, StoreError> {
    store
        .query(move |conn| {
            let t = event_totals(conn, &window)?;
            Ok(Headline {
                events: HeadlineTotals {
                    total: t.events,
                    users: t.users,
                    sessions: t.sessions,
                    conversions: t.conversions,
                },
                series: event_series(conn, &window)?,
            })
        })
        .await
}

fn event_totals(conn: &Connection, w: &Window) -> Result<EventTotals, StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    Ok(conn.query_row(
        &format!(
            "SELECT count(*), count(DISTINCT visitor_id), count(DISTINCT session_id), count(DISTINCT event), \
             (SELECT count(*) FROM {CONVERSIONS} WHERE event_time >= $1 AND event_time < $2) \
             FROM {EVENTS} WHERE event_time >= $1 AND event_time < $2"
        ),
        params![from, to],
        |r| {
            Ok(EventTotals {
                events: r.get(0)?,
                users: r.get(1)?,
                sessions: r.get(2)?,
                event_types: r.get(3)?,
                conversions: r.get(4)?,
            })
        },
    )?)
}

fn event_series(conn: &Connection, w: &Window) -> Result<Vec<JsonRow>, StoreError> {
    series(
        conn,
        EVENTS,
        "count(*) AS events, count(DISTINCT visitor_id) AS users",
        w.from_us(),
        w.to_us(),
        w.bucket_us(),
    )
}

fn events_sync(conn: &Connection, w: &Window) -> Result<EventSummary, StoreError> {
    let totals = event_totals(conn, w)?;
    let top_events = query_json(
        conn,
        &format!(
            "SELECT event, count(*) AS count, count(DISTINCT visitor_id) AS users FROM {EVENTS} \
             WHERE event_time >= ? AND event_time < ? GROUP BY event ORDER BY count DESC, event LIMIT ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), TOP_EVENTS],
        &[],
    )?;
    let series = event_series(conn, w)?;
    let rows = newest_rows(
        conn,
        EVENTS,
        EVENT_COLUMNS,
        &["properties"],
        w.from_us(),
        w.to_us(),
        w.limit,
        w.offset,
    )?;
    let total = totals.events;
    Ok(w.report(series, EventStats { totals, top_events }, rows, total))
}

fn conversions_sync(conn: &Connection, w: &Window) -> Result<ConversionSummary, StoreError> {
    let totals = conn.query_row(
        &format!(
            "SELECT count(*), count(DISTINCT visitor_id), count(DISTINCT funnel) FROM {CONVERSIONS} \
             WHERE event_time >= ? AND event_time < ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us())],
        |r| {
            Ok(ConversionTotals {
                conversions: r.get(0)?,
                users: r.get(1)?,
                funnels: r.get(2)?,
            })
        },
    )?;
    let steps = query_json(
        conn,
        &format!(
            "SELECT funnel, step, count(*) AS conversions, count(DISTINCT visitor_id) AS users, \
             min(event_time) AS first_seen FROM {CONVERSIONS} WHERE event_time >= ? AND event_time < ? \
             GROUP BY funnel, step ORDER BY funnel, first_seen, step LIMIT ?"
        ),
        params![ts_param(w.from_us()), ts_param(w.to_us()), TOP_STEPS],
        &[],
    )?;
    let series = series(
        conn,
        CONVERSIONS,
        "count(*) AS conversions",
        w.from_us(),
        w.to_us(),
        w.bucket_us(),
    )?;
    let rows = newest_rows(
        conn,
        CONVERSIONS,
        CONVERSION_COLUMNS,
        &["properties"],
        w.from_us(),
        w.to_us(),
        w.limit,
        w.offset,
    )?;
    let total = totals.conversions;
    Ok(w.report(series, ConversionStats { totals, steps }, rows, total))
}

/// The steps of one funnel in `conversions` over `[from_us, to_us)`: most people first,
/// then earliest first seen, which is the funnel's order when people drop off along it.
pub fn funnel_steps(
    conn: &Connection,
    funnel: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT step FROM {CONVERSIONS} WHERE funnel = ? AND event_time >= ? AND event_time < ? \
         GROUP BY step ORDER BY count(DISTINCT visitor_id) DESC, min(event_time), step LIMIT 10"
    ))?;
    let rows = stmt.query_map(params![funnel, ts_param(from_us), ts_param(to_us)], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
