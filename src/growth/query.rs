//! Reads over `user_events` and `conversions`: totals, top events, funnel steps, newest rows.

use duckdb::{params, Connection};
use serde::Serialize;

use super::rollup_days;
use super::time::DAY_US;
use crate::http::window::{Report, Window};
use crate::store::{
    count_between, newest_rows, query_json, series, ts_param, JsonRow, Store, StoreError,
};

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
    /// The figures that are estimates (HyperLogLog, see README "Definitions"), as paths
    /// into this answer; every other figure is exact.
    pub estimated: Vec<&'static str>,
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
    store.query(move |conn| events_sync(conn, &window)).await
}

pub async fn conversions(store: &Store, window: Window) -> Result<ConversionSummary, StoreError> {
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
    /// The figures that are estimates (HyperLogLog), as paths into the overview.
    pub estimated: Vec<&'static str>,
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
            let (t, series, estimated) = event_stats(conn, &window)?;
            Ok(Headline {
                events: HeadlineTotals {
                    total: t.totals.events,
                    users: t.totals.users,
                    sessions: t.totals.sessions,
                    conversions: t.totals.conversions,
                },
                series,
                estimated: estimated
                    .iter()
                    .filter_map(|f| match *f {
                        "totals.users" => Some("events.users"),
                        "totals.sessions" => Some("events.sessions"),
                        "series.users" => Some("series.users"),
                        _ => None,
                    })
                    .collect(),
            })
        })
        .await
}

/// Totals, top events and the events series of a window, from the growth roll-up (whole
/// UTC days) and the raw events (the rest): see `rollup_days`. People and sessions are
/// HyperLogLog estimates (`sketch`); the figures that are come back in the third value.
fn event_stats(
    conn: &Connection,
    w: &Window,
) -> Result<(EventStats, Vec<JsonRow>, Vec<&'static str>), StoreError> {
    if w.to_us() - w.from_us() <= EXACT_UP_TO_US {
        return exact_event_stats(conn, w);
    }
    let days = rollup_days::read(conn, w.from_us(), w.to_us(), true)?;
    let mut estimated = vec!["totals.users", "totals.sessions", "top_events.users"];
    let series = if rollup_days::serves_series(w.bucket_us()) {
        estimated.push("series.users");
        let mut per_day: Vec<&rollup_days::Entry> = days
            .iter()
            .filter(|e| e.dim == rollup_days::ALL && e.events > 0)
            .collect();
        per_day.sort_by_key(|e| e.day);
        per_day
            .into_iter()
            .map(|e| {
                let mut row = JsonRow::new();
                let t = chrono::DateTime::from_timestamp_micros(e.day * DAY_US)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                row.insert("t".into(), t.into());
                row.insert("events".into(), e.events.into());
                row.insert("users".into(), e.hll.estimate().into());
                row
            })
            .collect()
    } else {
        event_series(conn, w)?
    };
    let merged = rollup_days::merged(&days);
    let one = |dim: u8| merged.iter().find(|e| e.dim == dim);
    let mut events: Vec<&rollup_days::Entry> = merged
        .iter()
        .filter(|e| e.dim == rollup_days::FIRST_VALUE && e.events > 0)
        .collect();
    events.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.key.cmp(&b.key)));
    let event_types = events.len() as u64;
    let top_events = events
        .iter()
        .take(TOP_EVENTS as usize)
        .map(|e| {
            let mut row = JsonRow::new();
            row.insert("event".into(), e.key.clone().into());
            row.insert("count".into(), e.events.into());
            row.insert("users".into(), e.hll.estimate().into());
            row
        })
        .collect();
    let conversions = count_between(conn, CONVERSIONS, "event_time", w.from_us(), w.to_us())?;
    let totals = EventTotals {
        events: one(rollup_days::ALL).map_or(0, |e| e.events),
        users: one(rollup_days::ALL).map_or(0, |e| e.hll.estimate()),
        sessions: one(rollup_days::SESSIONS).map_or(0, |e| e.hll.estimate()),
        event_types,
        conversions,
    };
    Ok((
        EventStats {
            totals,
            top_events,
            estimated: estimated.clone(),
        },
        series,
        estimated,
    ))
}

/// Windows up to two days are read exactly from the raw events: that stays fast (one
/// day of a 10M-event file is a few hundred thousand rows), and "today" is what people
/// open most and compare with other tools.
const EXACT_UP_TO_US: i64 = 2 * DAY_US;

fn exact_event_stats(
    conn: &Connection,
    w: &Window,
) -> Result<(EventStats, Vec<JsonRow>, Vec<&'static str>), StoreError> {
    let (from, to) = (ts_param(w.from_us()), ts_param(w.to_us()));
    let totals = conn.query_row(
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
    )?;
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
    let stats = EventStats {
        totals,
        top_events,
        estimated: Vec::new(),
    };
    Ok((stats, series, Vec::new()))
}

fn event_series(conn: &Connection, w: &Window) -> Result<Vec<JsonRow>, StoreError> {
    series(
        conn,
        EVENTS,
        "count(*) AS events, count(DISTINCT visitor_id) AS users",
        &w.span(),
    )
}

fn events_sync(conn: &Connection, w: &Window) -> Result<EventSummary, StoreError> {
    let (stats, series, _) = event_stats(conn, w)?;
    let rows = newest_rows(conn, EVENTS, EVENT_COLUMNS, &["properties"], &w.span())?;
    let total = stats.totals.events;
    Ok(w.report(series, stats, rows, total))
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
    let series = series(conn, CONVERSIONS, "count(*) AS conversions", &w.span())?;
    let rows = newest_rows(
        conn,
        CONVERSIONS,
        CONVERSION_COLUMNS,
        &["properties"],
        &w.span(),
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
