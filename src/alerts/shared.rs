//! Alert state on the ClickHouse engine, where every node must see it: API rules,
//! silences, series states and the notification log in `alert_state` (one JSON body per
//! kind and key, the newest version wins, an empty body deletes), state changes in
//! `alert_history`, and the outbox in `alert_outbox` (each status change appends the whole
//! notification). ClickHouse has no UPDATE or transaction, so every change is an append
//! and every read folds the versions (argMax), as `state/sessions.rs` does with logins.
//! What one round writes is visible to the next round's node because inserts are
//! synchronous on every shard.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::records::{Group, GroupChange, Pending, Silence};
use super::rules::RuleSpec;
use super::series::{Series, State};
use crate::http::Window;
use crate::store::clickhouse::{iso_us, quote, ChError, ClickHouse};
use crate::store::{JsonRow, StoreError};

/// `alert_state.kind` of each kind of state.
pub const RULE: &str = "rule";
pub const SILENCE: &str = "silence";
pub const SERIES: &str = "series";
pub const GROUP: &str = "group";

/// Separates the parts of a two-part key; no rule id, channel name or label has it.
const SEP: char = '\u{1f}';

fn ch_err(e: ChError) -> StoreError {
    StoreError::ClickHouse(e)
}

/// Microseconds, never twice the same in this process: two changes of one key made in
/// one microsecond must still be ordered.
fn version() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let v = now.max(last + 1);
        match LAST.compare_exchange(last, v, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return v,
            Err(seen) => last = seen,
        }
    }
}

#[derive(Serialize)]
struct StateRow<'a> {
    kind: &'a str,
    state_key: &'a str,
    body: &'a str,
    version: i64,
}

/// Appends a version of each `(key, body)` of `kind`; `None` deletes the key.
async fn put(
    ch: &ClickHouse,
    kind: &str,
    items: &[(String, Option<String>)],
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let rows: Vec<StateRow> = items
        .iter()
        .map(|(key, body)| StateRow {
            kind,
            state_key: key,
            body: body.as_deref().unwrap_or(""),
            version: version(),
        })
        .collect();
    ch.insert("alert_state", &rows).await.map_err(ch_err)
}

#[derive(Deserialize)]
struct Latest {
    body: String,
}

/// The live bodies of `kind`, oldest first (by their newest version).
async fn all(ch: &ClickHouse, kind: &str) -> Result<Vec<String>, StoreError> {
    // The column renamed inside, so the aggregate's alias does not shadow it.
    let rows: Vec<Latest> = ch
        .rows(&format!(
            "SELECT argMax(b, version) AS body, max(version) AS v FROM \
             (SELECT state_key, body AS b, version FROM {} WHERE kind = {}) \
             GROUP BY state_key HAVING body != '' ORDER BY v, state_key",
            ch.table("alert_state"),
            quote(kind)
        ))
        .await
        .map_err(ch_err)?;
    Ok(rows.into_iter().map(|r| r.body).collect())
}

/// Parses what this binary wrote; a body that no longer parses is skipped, as a stored
/// DuckDB rule that no longer parses is.
fn parse<T: serde::de::DeserializeOwned>(kind: &str, bodies: Vec<String>) -> Vec<T> {
    bodies
        .into_iter()
        .filter_map(|b| match serde_json::from_str(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, kind, "a stored alert state no longer parses; skipped");
                None
            }
        })
        .collect()
}

pub async fn rules(ch: &ClickHouse) -> Result<Vec<RuleSpec>, StoreError> {
    Ok(parse(RULE, all(ch, RULE).await?))
}

/// Saves rule `id` as `spec`, or deletes it.
pub async fn save_rule(
    ch: &ClickHouse,
    id: String,
    spec: Option<RuleSpec>,
) -> Result<(), StoreError> {
    let body = spec.map(|s| serde_json::to_string(&s).unwrap_or_default());
    put(ch, RULE, &[(id, body)]).await
}

pub async fn silences(ch: &ClickHouse) -> Result<Vec<Silence>, StoreError> {
    let mut all: Vec<Silence> = parse(SILENCE, all(ch, SILENCE).await?);
    // As DuckDB lists them: by start.
    all.sort_by_key(|s| s.starts_at);
    Ok(all)
}

pub async fn save_silence(ch: &ClickHouse, s: &Silence) -> Result<(), StoreError> {
    let body = serde_json::to_string(s).unwrap_or_default();
    put(ch, SILENCE, &[(s.id.clone(), Some(body))]).await
}

pub async fn series(ch: &ClickHouse) -> Result<BTreeMap<(String, String), Series>, StoreError> {
    let all: Vec<Series> = parse(SERIES, all(ch, SERIES).await?);
    Ok(all
        .into_iter()
        .map(|s| ((s.rule_id.clone(), s.series.clone()), s))
        .collect())
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    changed_at: i64,
    rule_id: &'a str,
    series: &'a str,
    fingerprint: &'a str,
    labels: String,
    from_state: &'a str,
    to_state: &'a str,
    value: Option<f64>,
}

/// `history::save` on ClickHouse: the changed series' new versions, then the transitions.
pub async fn save_series(
    ch: &ClickHouse,
    now: DateTime<Utc>,
    changed: &[Series],
    transitions: &[(Series, State, State)],
) -> Result<(), StoreError> {
    let items: Vec<(String, Option<String>)> = changed
        .iter()
        .map(|s| {
            (
                format!("{}{SEP}{}", s.rule_id, s.series),
                Some(serde_json::to_string(s).unwrap_or_default()),
            )
        })
        .collect();
    put(ch, SERIES, &items).await?;
    if transitions.is_empty() {
        return Ok(());
    }
    let rows: Vec<HistoryRow> = transitions
        .iter()
        .map(|(s, from, to)| HistoryRow {
            changed_at: now.timestamp_micros(),
            rule_id: &s.rule_id,
            series: &s.series,
            fingerprint: &s.fingerprint,
            labels: serde_json::to_string(&s.labels).unwrap_or_default(),
            from_state: from.as_str(),
            to_state: to.as_str(),
            value: s.value,
        })
        .collect();
    ch.insert("alert_history", &rows).await.map_err(ch_err)
}

/// `history::read` on ClickHouse: the changes in the window, newest first, as DuckDB's JSON
/// shows them (labels as an object).
pub async fn history(
    ch: &ClickHouse,
    w: &Window,
    rule: Option<&str>,
) -> Result<Vec<JsonRow>, StoreError> {
    let only = rule.map_or(String::new(), |r| format!(" AND rule_id = {}", quote(r)));
    let rows: Vec<Value> = ch
        .rows(&format!(
            "SELECT changed_at, rule_id, series, fingerprint, labels, from_state, to_state, value \
             FROM {} WHERE changed_at >= {} AND changed_at < {}{only} \
             ORDER BY changed_at DESC, rule_id, series LIMIT {} OFFSET {}",
            ch.table("alert_history"),
            w.from_us().max(0),
            w.to_us().max(0),
            w.limit,
            w.offset
        ))
        .await
        .map_err(ch_err)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert(
                "at".into(),
                Value::String(iso_us(r["changed_at"].as_i64().unwrap_or(0))),
            );
            for k in ["rule_id", "series", "fingerprint"] {
                m.insert(k.into(), r[k].clone());
            }
            let labels = r["labels"]
                .as_str()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null);
            m.insert("labels".into(), labels);
            for k in ["from_state", "to_state"] {
                m.insert(k.into(), r[k].clone());
            }
            let value = r["value"].as_f64().and_then(serde_json::Number::from_f64);
            m.insert("value".into(), value.map_or(Value::Null, Value::Number));
            m
        })
        .collect())
}

/// A channel's group log entry, as stored.
#[derive(Serialize, Deserialize)]
struct GroupEntry {
    channel: String,
    group_key: String,
    first_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    sent_firing: Vec<String>,
}

pub async fn groups(ch: &ClickHouse) -> Result<Vec<(String, String, Group)>, StoreError> {
    let all: Vec<GroupEntry> = parse(GROUP, all(ch, GROUP).await?);
    Ok(all
        .into_iter()
        .map(|g| {
            (
                g.channel,
                g.group_key,
                Group {
                    first_at: g.first_at,
                    sent_at: g.sent_at,
                    sent_firing: g.sent_firing,
                },
            )
        })
        .collect())
}

/// One notification, whole, as each version of it in `alert_outbox` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Note {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub url: String,
    pub body: Value,
    pub status: String,
    pub summary: String,
    pub attempts: i32,
    pub created_at: i64,
    pub next_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Serialize)]
struct OutboxRow<'a> {
    id: i64,
    channel: &'a str,
    status: &'a str,
    body: String,
    version: i64,
}

async fn put_notes(ch: &ClickHouse, notes: &[Note]) -> Result<(), StoreError> {
    if notes.is_empty() {
        return Ok(());
    }
    let rows: Vec<OutboxRow> = notes
        .iter()
        .map(|n| OutboxRow {
            id: n.id,
            channel: &n.channel,
            status: &n.status,
            body: serde_json::to_string(n).unwrap_or_default(),
            version: version(),
        })
        .collect();
    ch.insert("alert_outbox", &rows).await.map_err(ch_err)
}

/// Ids for new notifications: milliseconds times a thousand plus a random part, so two
/// nodes queueing in the same millisecond differ, ids still follow time, and they stay
/// exact in a JavaScript number (below 2^53).
fn note_ids(n: usize) -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let base = Utc::now().timestamp_millis() * 1000 + i64::from(rand::random::<u16>() % 500);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let first = base.max(last + 1);
        match LAST.compare_exchange(
            last,
            first + n as i64 - 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return first,
            Err(seen) => last = seen,
        }
    }
}

/// `outbox::enqueue` on ClickHouse: the notifications first, then the group log, so a
/// failure in between at worst sends a group's notification again (never loses one).
pub async fn enqueue(
    ch: &ClickHouse,
    queued: Vec<Pending>,
    changes: Vec<GroupChange>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let first = note_ids(queued.len().max(1));
    let at = now.timestamp_micros();
    let notes: Vec<Note> = queued
        .into_iter()
        .enumerate()
        .map(|(i, p)| Note {
            id: first + i as i64,
            channel: p.channel,
            kind: p.kind.to_string(),
            url: p.url,
            body: p.body,
            status: "pending".into(),
            summary: format!("{} ({})", p.summary, p.status),
            attempts: 0,
            created_at: at,
            next_at: at,
            sent_at: None,
            last_error: None,
        })
        .collect();
    put_notes(ch, &notes).await?;
    let items: Vec<(String, Option<String>)> = changes
        .into_iter()
        .map(|c| match c {
            GroupChange::Put(channel, key, g) => (
                format!("{channel}{SEP}{key}"),
                Some(
                    serde_json::to_string(&GroupEntry {
                        channel,
                        group_key: key,
                        first_at: g.first_at,
                        sent_at: g.sent_at,
                        sent_firing: g.sent_firing,
                    })
                    .unwrap_or_default(),
                ),
            ),
            GroupChange::Delete(channel, key) => (format!("{channel}{SEP}{key}"), None),
        })
        .collect();
    put(ch, GROUP, &items).await
}

#[derive(Deserialize)]
struct NoteRow {
    note: String,
}

/// The newest version of each notification, newest first; `status` narrows to one.
async fn notes(
    ch: &ClickHouse,
    status: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<Note>, StoreError> {
    let having = status.map_or(String::new(), |s| format!(" HAVING st = {}", quote(s)));
    let limit = limit.map_or(String::new(), |n| format!(" LIMIT {n}"));
    let rows: Vec<NoteRow> = ch
        .rows(&format!(
            "SELECT id, argMax(b, version) AS note, argMax(s, version) AS st FROM \
             (SELECT id, body AS b, status AS s, version FROM {}) \
             GROUP BY id{having} ORDER BY id DESC{limit}",
            ch.table("alert_outbox")
        ))
        .await
        .map_err(ch_err)?;
    Ok(parse("outbox", rows.into_iter().map(|r| r.note).collect()))
}

/// The oldest pending notification of every channel: later ones wait, so a receiver
/// never sees a resolved before its firing.
pub async fn heads(ch: &ClickHouse) -> Result<Vec<Note>, StoreError> {
    let mut pending = notes(ch, Some("pending"), None).await?;
    pending.sort_by_key(|n| n.id);
    let mut seen = std::collections::HashSet::new();
    Ok(pending
        .into_iter()
        .filter(|n| seen.insert(n.channel.clone()))
        .collect())
}

/// Records a delivery attempt's outcome as the notification's newest version.
pub async fn mark(
    ch: &ClickHouse,
    mut note: Note,
    status: &str,
    attempts: i32,
    next_at: DateTime<Utc>,
    error: Option<String>,
) -> Result<(), StoreError> {
    if status == "sent" {
        note.sent_at = Some(Utc::now().timestamp_micros());
    }
    note.status = status.to_string();
    note.attempts = attempts;
    note.next_at = next_at.timestamp_micros();
    note.last_error = error;
    put_notes(ch, &[note]).await
}

/// `outbox::recent` on ClickHouse: as DuckDB's JSON shows the rows (URLs left out).
pub async fn recent(
    ch: &ClickHouse,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<JsonRow>, StoreError> {
    Ok(notes(ch, status, Some(limit))
        .await?
        .into_iter()
        .map(|n| {
            let mut m = Map::new();
            m.insert("id".into(), n.id.into());
            m.insert("channel".into(), n.channel.into());
            m.insert("kind".into(), n.kind.into());
            m.insert("status".into(), n.status.into());
            m.insert("summary".into(), n.summary.into());
            m.insert("attempts".into(), n.attempts.into());
            m.insert("created_at".into(), iso_us(n.created_at).into());
            m.insert("next_at".into(), iso_us(n.next_at).into());
            m.insert(
                "sent_at".into(),
                n.sent_at.map_or(Value::Null, |t| iso_us(t).into()),
            );
            m.insert(
                "last_error".into(),
                n.last_error.map_or(Value::Null, Value::String),
            );
            m.insert("body".into(), n.body);
            m
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_ids_only_grow() {
        let (a, b) = (version(), version());
        assert!(b > a, "two changes in one microsecond stay ordered");
        let first = note_ids(3);
        let next = note_ids(1);
        assert!(next >= first + 3, "{first} then {next}");
        assert!(next < 1 << 53, "exact as a JavaScript number");
    }
}
