//! Alert state and history in DuckDB: saved after every round that changed something,
//! loaded at start-up so pending and firing survive a restart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::Serialize;

use super::series::{Series, State};
use crate::http::Window;
use crate::store::{query_json, ts_param, JsonRow, Store, StoreError};

fn ts(t: Option<DateTime<Utc>>) -> duckdb::types::Value {
    t.map_or(duckdb::types::Value::Null, |t| {
        ts_param(t.timestamp_micros())
    })
}

/// Saves changed series and appends the transitions, in one transaction.
pub async fn save(
    store: &Store,
    now: DateTime<Utc>,
    changed: Vec<Series>,
    transitions: Vec<(Series, State, State)>,
) -> Result<(), StoreError> {
    if changed.is_empty() && transitions.is_empty() {
        return Ok(());
    }
    if let Some(ch) = store.clickhouse() {
        return super::shared::save_series(ch, now, &changed, &transitions).await;
    }
    store
        .maintain(move |c| {
            c.execute_batch("BEGIN TRANSACTION")?;
            let result = (|| -> Result<(), StoreError> {
                let mut up = c.prepare(
                    "INSERT OR REPLACE INTO alert_states (rule_id, series, fingerprint, labels, \
                     state, value, active_since, firing_since, last_true, resolved_at, evaluated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?;
                for s in &changed {
                    up.execute(params![
                        s.rule_id,
                        s.series,
                        s.fingerprint,
                        serde_json::to_string(&s.labels).unwrap_or_default(),
                        s.state.as_str(),
                        s.value,
                        ts(s.active_since),
                        ts(s.firing_since),
                        ts(s.last_true),
                        ts(s.resolved_at),
                        ts_param(s.evaluated_at.timestamp_micros()),
                    ])?;
                }
                let mut hist = c.prepare(
                    "INSERT INTO alert_history (changed_at, rule_id, series, fingerprint, labels, \
                     from_state, to_state, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )?;
                for (s, from, to) in &transitions {
                    hist.execute(params![
                        ts_param(now.timestamp_micros()),
                        s.rule_id,
                        s.series,
                        s.fingerprint,
                        serde_json::to_string(&s.labels).unwrap_or_default(),
                        from.as_str(),
                        to.as_str(),
                        s.value,
                    ])?;
                }
                Ok(())
            })();
            match result {
                Ok(()) => {
                    c.execute_batch("COMMIT")?;
                    Ok(())
                }
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
}

fn micros(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(DateTime::from_timestamp_micros)
}

/// Every saved series, keyed as the engine keeps them.
pub async fn load(store: &Store) -> Result<BTreeMap<(String, String), Series>, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return super::shared::series(ch).await;
    }
    store
        .query(|c| {
            let mut stmt = c.prepare(
                "SELECT rule_id, series, fingerprint, labels::VARCHAR, state, value, \
                 epoch_us(active_since), epoch_us(firing_since), epoch_us(last_true), \
                 epoch_us(resolved_at), epoch_us(evaluated_at) FROM alert_states",
            )?;
            let rows = stmt.query_map([], |r| {
                let labels: String = r.get(3)?;
                let state: String = r.get(4)?;
                Ok(Series {
                    rule_id: r.get(0)?,
                    series: r.get(1)?,
                    fingerprint: r.get(2)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    state: State::parse(&state),
                    value: r.get(5)?,
                    samples: 0.0,
                    reference: None,
                    band: None,
                    active_since: micros(r.get(6)?),
                    firing_since: micros(r.get(7)?),
                    last_true: micros(r.get(8)?),
                    resolved_at: micros(r.get(9)?),
                    evaluated_at: micros(r.get(10)?).unwrap_or_else(Utc::now),
                })
            })?;
            let mut out = BTreeMap::new();
            for s in rows {
                let s = s?;
                out.insert((s.rule_id.clone(), s.series.clone()), s);
            }
            Ok(out)
        })
        .await
}

#[derive(Debug, Serialize)]
pub struct History {
    pub from: String,
    pub to: String,
    /// Newest first.
    pub changes: Vec<JsonRow>,
}

/// State changes in `[from, to)`, newest first, one page of them; `rule` narrows to one.
pub async fn read(store: &Store, w: Window, rule: Option<String>) -> Result<History, StoreError> {
    let (from, to) = (w.from_us(), w.to_us());
    let (limit, offset) = (i64::from(w.limit), i64::from(w.offset));
    let changes = if let Some(ch) = store.clickhouse() {
        super::shared::history(ch, &w, rule.as_deref()).await?
    } else {
        store
        .query(move |c| {
            query_json(
                c,
                "SELECT changed_at AS at, rule_id, series, fingerprint, labels::VARCHAR AS labels, from_state, \
                 to_state, value FROM alert_history WHERE changed_at >= ? AND changed_at < ? \
                 AND (?::VARCHAR IS NULL OR rule_id = ?::VARCHAR) \
                 ORDER BY changed_at DESC, rule_id, series LIMIT ? OFFSET ?",
                params![ts_param(from), ts_param(to), rule, rule, limit, offset],
                &["labels"],
            )
        })
        .await?
    };
    let json = w.json();
    Ok(History {
        from: json.from,
        to: json.to,
        changes,
    })
}
