//! The growth reads on the ClickHouse engine: each query's ClickHouse SQL, side by side
//! with its DuckDB twin in `query.rs`, `funnel.rs`, `retention.rs`, `active.rs`,
//! `adoption.rs` and `overview.rs`, and folded by the same Rust code there (`results`,
//! `table`, `summarise`, `assemble`), so both engines give the same answers.
//!
//! Why two SQL texts rather than one builder with a dialect: the two differ in shape, not
//! in function names. DuckDB's versions use CTE chains, joins, window functions and
//! GROUPING SETS; ClickHouse 18.16 has none of those, so the same definitions are written
//! with per-person arrays (`groupArray`, `arrayFilter`, `ARRAY JOIN`). The SQL here runs on
//! 18.16 and on current releases alike (CLICKHOUSE.md, Appendix A). Values are quoted on
//! the client (`store::clickhouse::quote`): 18.16 has no server-side parameters.
//!
//! Columns differ in two ways: times are UInt64 microseconds (`event_time`) and a person's
//! missing `visitor_id` is `''` rather than NULL.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::active::{self, Active, ActiveSpec};
use super::adoption::{self, Adoption, AdoptionSpec};
use super::funnel::{self, BreakdownRow, Funnel, FunnelSpec, Source};
use super::overview::{self, Entry, Overview, Totals};
use super::profile::Person;
use super::query::{
    ConversionStats, ConversionSummary, ConversionTotals, EventStats, EventSummary, EventTotals,
};
use super::retention::{self, Retention, RetentionSpec};
use super::time::{Interval, DAY_US, WEEK_US};
use crate::http::Window;
use crate::store::clickhouse::{iso_us, quote, quote_list, time_range, ChError, ClickHouse};
use crate::store::{JsonRow, StoreError};

const TOP_EVENTS: u32 = 20;
const TOP_STEPS: u32 = 100;
/// 1970-01-05, the first Monday of the epoch (as `time.rs`).
const MONDAY_US: i64 = 4 * DAY_US;

fn err(e: ChError) -> StoreError {
    StoreError::ClickHouse(e)
}

async fn rows(ch: &ClickHouse, sql: &str) -> Result<Vec<Value>, StoreError> {
    ch.rows(sql).await.map_err(err)
}

fn u(r: &Value, k: &str) -> u64 {
    r[k].as_u64()
        .or_else(|| r[k].as_i64().map(|v| v.max(0) as u64))
        .unwrap_or(0)
}

fn i(r: &Value, k: &str) -> i64 {
    r[k].as_i64().unwrap_or(0)
}

fn text(r: &Value, k: &str) -> Option<String> {
    r[k].as_str().map(str::to_string)
}

/// `Interval::sql` in ClickHouse: the bucket number of an Int64 µs expression.
pub fn bucket(interval: Interval, col: &str, offset_us: i64) -> String {
    match interval {
        Interval::Day => format!("toInt64(intDiv({col} + ({offset_us}), {DAY_US}))"),
        Interval::Week => {
            format!("toInt64(intDiv({col} + ({offset_us}) - {MONDAY_US}, {WEEK_US}))")
        }
        Interval::Month => {
            let at = format!("toDateTime(intDiv({col} + ({offset_us}), 1000000), 'UTC')");
            format!("toInt64(toYear({at}) * 12 + toMonth({at}) - 1)")
        }
    }
}

fn range(from_us: i64, to_us: i64) -> String {
    time_range("event_time", "event_at", from_us, to_us)
}

// ---- /api/analytics/events ------------------------------------------------------------

/// Totals and the events series of a window: what the events page and the overview's
/// headline share. `uniqExact`: nothing here is an estimate.
pub async fn event_totals(
    ch: &ClickHouse,
    w: &Window,
) -> Result<(EventTotals, Vec<JsonRow>), StoreError> {
    let (ev, conv) = (ch.table("user_events"), ch.table("conversions"));
    let r = range(w.from_us(), w.to_us());
    let t = &rows(
        ch,
        &format!(
            "SELECT count() AS events, uniqExactIf(visitor_id, visitor_id != '') AS users, \
             uniqExact(session_id) AS sessions, uniqExact(event) AS event_types FROM {ev} WHERE {r}"
        ),
    )
    .await?[0];
    let c = &rows(ch, &format!("SELECT count() AS n FROM {conv} WHERE {r}")).await?[0];
    let totals = EventTotals {
        events: u(t, "events"),
        users: u(t, "users"),
        sessions: u(t, "sessions"),
        event_types: u(t, "event_types"),
        conversions: u(c, "n"),
    };
    let b = w.bucket_us().max(1);
    let series = rows(
        ch,
        &format!(
            "SELECT intDiv(event_time, {b}) * {b} AS t, count() AS events, \
             uniqExactIf(visitor_id, visitor_id != '') AS users FROM {ev} WHERE {r} GROUP BY t ORDER BY t"
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        let mut m = Map::new();
        m.insert("t".into(), iso_us(i(&v, "t")).into());
        m.insert("events".into(), u(&v, "events").into());
        m.insert("users".into(), u(&v, "users").into());
        m
    })
    .collect();
    Ok((totals, series))
}

pub async fn events(ch: &ClickHouse, w: &Window) -> Result<EventSummary, StoreError> {
    let ev = ch.table("user_events");
    let r = range(w.from_us(), w.to_us());
    let (totals, series) = event_totals(ch, w).await?;
    let top_events = rows(
        ch,
        &format!(
            "SELECT event, count() AS count, uniqExactIf(visitor_id, visitor_id != '') AS users FROM {ev} \
             WHERE {r} GROUP BY event ORDER BY count DESC, event LIMIT {TOP_EVENTS}"
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        let mut m = Map::new();
        m.insert("event".into(), v["event"].clone());
        m.insert("count".into(), u(&v, "count").into());
        m.insert("users".into(), u(&v, "users").into());
        m
    })
    .collect();
    let page = rows(
        ch,
        &format!(
            "SELECT id, user_id, session_id, event, properties, route, referrer, user_agent, ip, timestamp, \
             created_at, event_time, visitor_id, feature, browser, os, device, referrer_domain, utm_source, \
             utm_medium, utm_campaign FROM {ev} WHERE {r} ORDER BY event_time DESC, id LIMIT {} OFFSET {}",
            w.limit, w.offset
        ),
    )
    .await?
    .into_iter()
    .map(event_json)
    .collect();
    let total = totals.events;
    // uniqExact: nothing here is an estimate.
    let estimated = Vec::new();
    Ok(w.report(
        series,
        EventStats {
            totals,
            top_events,
            estimated,
        },
        page,
        total,
    ))
}

// ---- /api/analytics/conversions -------------------------------------------------------

pub async fn conversions(ch: &ClickHouse, w: &Window) -> Result<ConversionSummary, StoreError> {
    let conv = ch.table("conversions");
    let r = range(w.from_us(), w.to_us());
    let people = "uniqExactIf(visitor_id, visitor_id != '')";
    let t = &rows(
        ch,
        &format!(
            "SELECT count() AS conversions, {people} AS users, uniqExact(funnel) AS funnels \
             FROM {conv} WHERE {r}"
        ),
    )
    .await?[0];
    let totals = ConversionTotals {
        conversions: u(t, "conversions"),
        users: u(t, "users"),
        funnels: u(t, "funnels"),
    };
    let steps = rows(
        ch,
        &format!(
            "SELECT funnel, step, count() AS conversions, {people} AS users, min(event_time) AS first_seen \
             FROM {conv} WHERE {r} GROUP BY funnel, step ORDER BY funnel, first_seen, step LIMIT {TOP_STEPS}"
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        let mut m = Map::new();
        m.insert("funnel".into(), v["funnel"].clone());
        m.insert("step".into(), v["step"].clone());
        m.insert("conversions".into(), u(&v, "conversions").into());
        m.insert("users".into(), u(&v, "users").into());
        m.insert("first_seen".into(), iso_us(i(&v, "first_seen")).into());
        m
    })
    .collect();
    let b = w.bucket_us().max(1);
    let series = rows(
        ch,
        &format!(
            "SELECT intDiv(event_time, {b}) * {b} AS t, count() AS conversions FROM {conv} \
             WHERE {r} GROUP BY t ORDER BY t"
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        let mut m = Map::new();
        m.insert("t".into(), iso_us(i(&v, "t")).into());
        m.insert("conversions".into(), u(&v, "conversions").into());
        m
    })
    .collect();
    let page = rows(
        ch,
        &format!(
            "SELECT id, user_id, session_id, funnel, step, properties, timestamp, created_at, visitor_id, \
             event_time FROM {conv} WHERE {r} ORDER BY event_time DESC, id LIMIT {} OFFSET {}",
            w.limit, w.offset
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        row_json(
            v,
            &[
                "id",
                "user_id",
                "session_id",
                "funnel",
                "step",
                "properties",
                "timestamp",
                "created_at",
                "visitor_id",
                "event_time",
            ],
        )
    })
    .collect();
    let total = totals.conversions;
    Ok(w.report(series, ConversionStats { totals, steps }, page, total))
}

/// One stored event as `GET /api/analytics/events` shows it on DuckDB (`newest_rows`).
fn event_json(v: Value) -> JsonRow {
    row_json(
        v,
        &[
            "id",
            "user_id",
            "session_id",
            "event",
            "properties",
            "route",
            "referrer",
            "user_agent",
            "ip",
            "timestamp",
            "created_at",
            "event_time",
            "visitor_id",
            "feature",
            "browser",
            "os",
            "device",
            "referrer_domain",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        ],
    )
}

/// A stored row as DuckDB's `newest_rows` shows it: times as RFC 3339, `''` visitors as
/// null, `properties` as embedded JSON.
fn row_json(v: Value, columns: &[&str]) -> JsonRow {
    let mut m = Map::new();
    for &k in columns {
        let value = match k {
            "created_at" | "event_time" => Value::String(iso_us(i(&v, k))),
            "timestamp" => i(&v, k).into(),
            "visitor_id" => match v[k].as_str() {
                Some("") | None => Value::Null,
                Some(s) => s.into(),
            },
            "properties" => match v[k].as_str() {
                Some(s) => serde_json::from_str(s).unwrap_or_else(|_| s.into()),
                None => Value::Null,
            },
            _ => v[k].clone(),
        };
        m.insert(k.to_string(), value);
    }
    m
}

// ---- /api/analytics/users/{id} -------------------------------------------------------

/// `profile::run_sync` on ClickHouse: the profile folded from all of the user's events at
/// read time (DuckDB folds them into `user_profiles` as they come; the answer is the
/// same), and their newest events. DuckDB breaks ties of event time by commit order,
/// which ClickHouse does not keep: here the later receive time goes first.
pub async fn person(ch: &ClickHouse, id: &str, limit: u32) -> Result<Option<Person>, StoreError> {
    let ev = ch.table("user_events");
    let who = quote(id);
    let p = rows(
        ch,
        &format!(
            "SELECT count() AS n, min(created_at) AS first_seen, max(created_at) AS last_activity,              arraySort(groupUniqArray(feature)) AS features FROM {ev} WHERE user_id = {who}"
        ),
    )
    .await?;
    let profile = p.first().filter(|r| u(r, "n") > 0).map(|r| {
        let mut m = Map::new();
        m.insert("user_id".into(), id.into());
        m.insert("first_seen".into(), iso_us(i(r, "first_seen")).into());
        m.insert("last_activity".into(), iso_us(i(r, "last_activity")).into());
        m.insert("total_events".into(), u(r, "n").into());
        m.insert("features_used".into(), r["features"].clone());
        // What DuckDB's fold stamps: the newest receive time of the user's events.
        m.insert("updated_at".into(), iso_us(i(r, "last_activity")).into());
        m
    });
    let events: Vec<JsonRow> = rows(
        ch,
        &format!(
            "SELECT id, event, properties, route, referrer, session_id, feature, browser, os, device,              created_at, event_time FROM {ev} WHERE visitor_id = {who}              ORDER BY event_time DESC, created_at DESC, id LIMIT {limit}"
        ),
    )
    .await?
    .into_iter()
    .map(|v| {
        row_json(
            v,
            &[
                "id",
                "event",
                "properties",
                "route",
                "referrer",
                "session_id",
                "feature",
                "browser",
                "os",
                "device",
                "created_at",
                "event_time",
            ],
        )
    })
    .collect();
    Ok(Person::found(id, profile, events))
}

// ---- funnels --------------------------------------------------------------------------

/// The funnel of `funnel.rs` (same definition): per person the entry time `t1`, then each
/// next step's earliest time after the previous one and within the window of `t1`.
pub fn funnel_sql(ch: &ClickHouse, spec: &FunnelSpec) -> String {
    let (table, name) = match spec.source {
        Source::Events => (ch.table("user_events"), "event"),
        Source::Conversions { .. } => (ch.table("conversions"), "step"),
    };
    let n = spec.steps.len();
    let w = spec.window_us.max(0);
    let flags: Vec<String> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(k, st)| format!("{name} = {} AS s{}", quote(&st.event), k + 1))
        .collect();
    let mut names: Vec<&str> = spec.steps.iter().map(|st| st.event.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut filter = format!(
        "{} AND visitor_id != '' AND {name} IN ({})",
        range(spec.from_us, spec.to_us),
        quote_list(names)
    );
    if let Source::Conversions { funnel } = &spec.source {
        filter.push_str(&format!(" AND funnel = {}", quote(funnel)));
    }
    let inner = format!(
        "SELECT cityHash64(visitor_id) AS v, event_time AS t, {} FROM {table} WHERE {filter}",
        flags.join(", ")
    );
    let mut per = vec!["minIf(t, s1) AS t1".to_string()];
    for k in 2..=n {
        per.push(format!(
            "if(t{p} = 0, toUInt64(0), arrayReduce('min', arrayFilter(x -> x > t{p} AND x <= t1 + {w}, \
             groupArrayIf(t, s{k})))) AS t{k}",
            p = k - 1
        ));
    }
    let mut outer: Vec<String> = (1..=n)
        .map(|k| format!("countIf(t{k} > 0) AS u{k}"))
        .collect();
    for k in 2..=n {
        outer.push(format!(
            "arraySort(groupArrayIf(t{k} - t{p}, t{k} > 0)) AS d{k}",
            p = k - 1
        ));
    }
    let mut last: Vec<String> = (1..=n).map(|k| format!("u{k}")).collect();
    for k in 2..=n {
        // DuckDB's median interpolates between the two middle values.
        last.push(format!(
            "if(length(d{k}) = 0, 0, if(length(d{k}) % 2 = 1, toFloat64(d{k}[intDiv(length(d{k}), 2) + 1]), \
             (d{k}[intDiv(length(d{k}), 2)] + d{k}[intDiv(length(d{k}), 2) + 1]) / 2)) AS m{k}"
        ));
    }
    format!(
        "SELECT {} FROM (SELECT {} FROM (SELECT v, {} FROM ({inner}) GROUP BY v HAVING countIf(s1) > 0))",
        last.join(", "),
        outer.join(", "),
        per.join(", ")
    )
}

pub async fn funnel(ch: &ClickHouse, spec: &FunnelSpec) -> Result<Funnel, StoreError> {
    if spec.breakdown.is_some() || spec.steps.iter().any(|s| !s.filters.is_empty()) {
        return funnel_by_rows(ch, spec).await;
    }
    let n = spec.steps.len();
    let r = rows(ch, &funnel_sql(ch, spec)).await?;
    let row = r.first().cloned().unwrap_or(Value::Null);
    let users: Vec<u64> = (1..=n).map(|k| u(&row, &format!("u{k}"))).collect();
    let mut medians = vec![None];
    for k in 2..=n {
        let us = row[format!("m{k}")].as_f64().unwrap_or(0.0);
        medians.push((users[k - 1] > 0).then(|| (us / 1e3).round() / 1e3));
    }
    Ok(Funnel {
        steps: funnel::results(&spec.steps, &users, &medians),
        breakdown: None,
        breakdowns: Vec::<BreakdownRow>::new(),
    })
}

/// The scan of a funnel with property filters or a breakdown: the rows of the steps'
/// names in the range, each with its name's place in `names` (1-based) and, where a step
/// of that name reads properties, its properties. 18.16 cannot read a JSON property the
/// way DuckDB does (CLICKHOUSE.md: `visitParam*` finds keys at any depth and misses
/// `"k": v`), so `funnel_by_rows` applies the filters in Rust (`funnel::row_mask`).
pub fn funnel_rows_sql(ch: &ClickHouse, spec: &FunnelSpec, names: &[&str]) -> String {
    let (table, name) = match spec.source {
        Source::Events => (ch.table("user_events"), "event"),
        Source::Conversions { .. } => (ch.table("conversions"), "step"),
    };
    let mut reading: Vec<&str> = spec
        .steps
        .iter()
        .enumerate()
        .filter(|(k, st)| !st.filters.is_empty() || (*k == 0 && spec.breakdown.is_some()))
        .map(|(_, st)| st.event.as_str())
        .collect();
    reading.sort_unstable();
    reading.dedup();
    let props = if reading.is_empty() {
        "CAST(NULL AS Nullable(String))".to_string()
    } else {
        format!("if({name} IN ({}), properties, NULL)", quote_list(reading))
    };
    let mut filter = format!(
        "{} AND visitor_id != '' AND {name} IN ({})",
        range(spec.from_us, spec.to_us),
        quote_list(names.iter().copied())
    );
    if let Source::Conversions { funnel } = &spec.source {
        filter.push_str(&format!(" AND funnel = {}", quote(funnel)));
    }
    format!(
        "SELECT cityHash64(visitor_id) AS v, toInt64(event_time) AS t,          indexOf([{}], {name}) AS n, {props} AS p FROM {table} WHERE {filter}",
        quote_list(names.iter().copied())
    )
}

async fn funnel_by_rows(ch: &ClickHouse, spec: &FunnelSpec) -> Result<Funnel, StoreError> {
    #[derive(serde::Deserialize)]
    struct Row {
        v: u64,
        t: i64,
        n: usize,
        p: Option<String>,
    }
    let mut names: Vec<&str> = spec.steps.iter().map(|st| st.event.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut lines = ch
        .lines(&funnel_rows_sql(ch, spec, &names))
        .await
        .map_err(err)?;
    let mut scan = funnel::Scan::new(spec);
    while let Some(r) = lines.next::<Row>().await.map_err(err)? {
        let Some(name) = r.n.checked_sub(1).and_then(|i| names.get(i)) else {
            continue;
        };
        let (m, value) = funnel::row_mask(spec, name, r.p.as_deref());
        if m != 0 {
            scan.row(r.v, r.t, m, value);
        }
    }
    // The walk runs on two threads, as after DuckDB's scan.
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || scan.finish(&spec))
        .await
        .map_err(|e| StoreError::Internal(format!("funnel walk: {e}")))
}

/// `query::funnel_steps` on ClickHouse.
pub async fn funnel_steps(
    ch: &ClickHouse,
    funnel: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT step FROM {} WHERE funnel = {} AND {} GROUP BY step \
         ORDER BY uniqExactIf(visitor_id, visitor_id != '') DESC, min(event_time), step LIMIT 10",
        ch.table("conversions"),
        quote(funnel),
        range(from_us, to_us)
    );
    Ok(rows(ch, &sql)
        .await?
        .iter()
        .filter_map(|r| text(r, "step"))
        .collect())
}

// ---- retention ------------------------------------------------------------------------

pub fn retention_sql(ch: &ClickHouse, spec: &RetentionSpec) -> String {
    let cond = |ev: &Option<String>| match ev {
        Some(e) => format!("event = {}", quote(e)),
        None => "1".to_string(),
    };
    let (st, rt) = (cond(&spec.start_event), cond(&spec.return_event));
    let b = bucket(spec.interval, "toInt64(event_time)", spec.offset_us);
    let mut filter = format!("{} AND visitor_id != ''", range(spec.from_us(), spec.to_us));
    if let (Some(a), Some(z)) = (&spec.start_event, &spec.return_event) {
        filter.push_str(&format!(" AND event IN ({}, {})", quote(a), quote(z)));
    }
    // `WHERE t0 > 0` also works around 18.16 losing a lambda's second outer column.
    format!(
        "SELECT b0, k, count() AS n FROM ( \
           SELECT b0, t0, arrayConcat([toInt64(-1)], arrayMap(x -> x.1 - b0, \
             arrayFilter(x -> x.1 >= b0 AND x.2 >= t0 AND x.2 > 0, bl))) AS ks \
           FROM (SELECT v, minIf(b, hs) AS b0, minIf(fs, hs) AS t0, groupArray((b, lr)) AS bl \
             FROM (SELECT v, b, countIf(st) > 0 AS hs, minIf(t, st) AS fs, maxIf(t, rt) AS lr \
               FROM (SELECT cityHash64(visitor_id) AS v, toInt64(event_time) AS t, {b} AS b, \
                 {st} AS st, {rt} AS rt FROM {} WHERE {filter}) \
               GROUP BY v, b) \
             GROUP BY v HAVING countIf(hs) > 0)) \
         ARRAY JOIN ks AS k WHERE t0 > 0 GROUP BY b0, k ORDER BY b0, k",
        ch.table("user_events")
    )
}

pub async fn retention(ch: &ClickHouse, spec: &RetentionSpec) -> Result<Retention, StoreError> {
    let first = spec.first_bucket();
    let last = spec.last_bucket();
    let width = (spec.periods + 1) as usize;
    let mut sizes = vec![0u64; width];
    let mut kept = vec![vec![0u64; width]; width];
    for r in rows(ch, &retention_sql(ch, spec)).await? {
        let (b0, k, n) = (i(&r, "b0"), i(&r, "k"), u(&r, "n"));
        let Ok(c) = usize::try_from(b0 - first) else {
            continue;
        };
        if c >= width {
            continue;
        }
        if k < 0 {
            sizes[c] = n;
        } else if let Some(slot) = kept[c].get_mut(k as usize) {
            *slot = n;
        }
    }
    Ok(retention::table(spec, first, last, &sizes, &kept))
}

// ---- active people --------------------------------------------------------------------

pub fn active_sql(ch: &ClickHouse, spec: &ActiveSpec) -> String {
    let day = bucket(Interval::Day, "toInt64(event_time)", spec.offset_us);
    let from = Interval::Day.start(spec.first_day() - (active::MONTH_DAYS - 1), spec.offset_us);
    let (w, m) = (active::WEEK_DAYS, active::MONTH_DAYS);
    format!(
        "SELECT x, sum(a) AS dau, sum(b) AS wau, sum(c) AS mau FROM ( \
           SELECT arrayJoin([(day, 1, 1, 1), (day + 1, -1, 0, 0), (least(day + {w}, nxt), 0, -1, 0), \
             (least(day + {m}, nxt), 0, 0, -1)]) AS e, \
             tupleElement(e, 1) AS x, tupleElement(e, 2) AS a, tupleElement(e, 3) AS b, tupleElement(e, 4) AS c \
           FROM (SELECT day, nxt FROM ( \
             SELECT v, arraySort(groupUniqArray(d)) AS days FROM ( \
               SELECT cityHash64(visitor_id) AS v, {day} AS d FROM {} WHERE {} AND visitor_id != '') \
             GROUP BY v) \
           ARRAY JOIN days AS day, arrayPushBack(arrayPopFront(days), toInt64(9223372036854775807)) AS nxt)) \
         GROUP BY x ORDER BY x",
        ch.table("user_events"),
        range(from, spec.to_us)
    )
}

pub async fn active(ch: &ClickHouse, spec: &ActiveSpec) -> Result<Active, StoreError> {
    let deltas: Vec<(i64, [i64; 3])> = rows(ch, &active_sql(ch, spec))
        .await?
        .iter()
        .map(|r| (i(r, "x"), [i(r, "dau"), i(r, "wau"), i(r, "mau")]))
        .collect();
    Ok(active::summarise(spec, &deltas))
}

// ---- feature adoption -----------------------------------------------------------------

pub fn adoption_sql(ch: &ClickHouse, spec: &AdoptionSpec) -> String {
    let b = bucket(spec.interval, "toInt64(event_time)", spec.offset_us);
    // GROUPING SETS ((feature, b), (feature), (b), ()) as four copies of each row.
    format!(
        "SELECT gid IN (2, 3) AS any_feature, gid IN (1, 3) AS any_bucket, f, bb, count() AS events, \
           uniqExact(visitor_id) AS users \
         FROM (SELECT visitor_id, gid, if(gid IN (0, 1), feature, NULL) AS f, if(gid IN (0, 2), b, NULL) AS bb \
           FROM (SELECT visitor_id, feature, {b} AS b FROM {} WHERE {} AND visitor_id != '') \
           ARRAY JOIN [0, 1, 2, 3] AS gid) \
         GROUP BY gid, f, bb",
        ch.table("user_events"),
        range(spec.from_us, spec.to_us)
    )
}

pub async fn adoption(ch: &ClickHouse, spec: &AdoptionSpec) -> Result<Adoption, StoreError> {
    let cells = rows(ch, &adoption_sql(ch, spec))
        .await?
        .into_iter()
        .map(|r| adoption::Cell {
            feature: text(&r, "f"),
            bucket: r["bb"].as_i64(),
            events: u(&r, "events"),
            users: u(&r, "users"),
            any_feature: u(&r, "any_feature") != 0,
            any_bucket: u(&r, "any_bucket") != 0,
        })
        .collect();
    Ok(adoption::from_cells(spec, cells))
}

// ---- the growth overview --------------------------------------------------------------

pub fn breakdown_sql(ch: &ClickHouse, spec: &ActiveSpec) -> String {
    let arms: Vec<String> = overview::COLUMNS
        .iter()
        .enumerate()
        .map(|(d, (col, pageviews))| match (d, pageviews) {
            (0, _) => format!("d = 0, toNullable({col})"),
            (_, true) => format!("d = {d}, if(pv, {col}, NULL)"),
            (_, false) => format!("d = {d}, {col}"),
        })
        .collect();
    let cols: Vec<&str> = overview::COLUMNS.iter().map(|c| c.0).collect();
    let ds: Vec<String> = (0..overview::COLUMNS.len())
        .map(|d| d.to_string())
        .collect();
    // People per value are exact here (DuckDB estimates them with HyperLogLog).
    format!(
        "SELECT d, k, count() AS events, uniqExact(visitor_id) AS users FROM ( \
           SELECT d, multiIf({}, NULL) AS k, visitor_id FROM ( \
             SELECT visitor_id, event IN {} AS pv, {} FROM {} WHERE {} AND visitor_id != '') \
           ARRAY JOIN [{}] AS d) \
         WHERE k IS NOT NULL GROUP BY d, k",
        arms.join(", "),
        overview::PAGEVIEW_EVENTS,
        cols.join(", "),
        ch.table("user_events"),
        range(spec.from_us, spec.to_us),
        ds.join(", ")
    )
}

pub async fn overview(ch: &ClickHouse, spec: &ActiveSpec) -> Result<Overview, StoreError> {
    let t = rows(
        ch,
        &format!(
            "SELECT count() AS events, uniqExact(visitor_id) AS users, \
             countIf(event IN {}) AS pageviews FROM {} WHERE {} AND visitor_id != ''",
            overview::PAGEVIEW_EVENTS,
            ch.table("user_events"),
            range(spec.from_us, spec.to_us)
        ),
    )
    .await?;
    let t = t.first().cloned().unwrap_or(Value::Null);
    let totals = Totals {
        events: u(&t, "events"),
        users: u(&t, "users"),
        pageviews: u(&t, "pageviews"),
    };
    let mut breakdowns: BTreeMap<&'static str, Vec<Entry>> = overview::DIMENSIONS
        .iter()
        .map(|d| (*d, Vec::new()))
        .collect();
    for r in rows(ch, &breakdown_sql(ch, spec)).await? {
        let (Some(dim), Some(key)) = (
            usize::try_from(i(&r, "d"))
                .ok()
                .and_then(|d| overview::DIMENSIONS.get(d)),
            text(&r, "k"),
        ) else {
            continue;
        };
        if let Some(list) = breakdowns.get_mut(dim) {
            list.push(Entry {
                key,
                events: u(&r, "events"),
                users: u(&r, "users"),
            });
        }
    }
    overview::rank(&mut breakdowns);
    Ok(Overview {
        totals,
        active: active(ch, spec).await?,
        breakdowns,
        // uniqExact: nothing here is an estimate.
        estimated: Vec::new(),
    })
}
