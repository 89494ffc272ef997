//! Silences: label matchers with an expiry. A silenced alert still changes state and shows
//! on the dashboard; only its notifications are held back, as in Alertmanager.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::Deserialize;

pub use super::records::Silence;
use crate::config::Secs;
use crate::http::params::present;
use crate::http::params::Instant;
use crate::store::{ts_param, Store, StoreError};

/// The longest silence: a year.
pub const MAX_SILENCE: u64 = 366 * 86_400;
pub const MAX_MATCHERS: usize = 32;
pub const MAX_MATCHER_NAME: usize = 64;
pub const MAX_MATCHER_VALUE: usize = 2048;
pub const MAX_COMMENT: usize = 1024;

/// `POST /api/alerts/silences`: matchers and `ends_at` or a `duration` (`ends_at` wins).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceIn {
    pub matchers: BTreeMap<String, String>,
    /// Default now.
    #[serde(default, deserialize_with = "present")]
    pub starts_at: Option<Instant>,
    #[serde(default, deserialize_with = "present")]
    pub ends_at: Option<Instant>,
    /// `2h`, `30m`, or seconds, from `starts_at`.
    #[serde(default, deserialize_with = "present")]
    pub duration: Option<Secs>,
    #[serde(default, deserialize_with = "present")]
    pub comment: Option<String>,
}

impl SilenceIn {
    /// Checks what the schema states. A silence that ends before it starts, or in the past,
    /// is kept as written (inactive, as the answer's `active` says): the schema cannot
    /// state "in the future", and a clock is no reason to refuse a request.
    pub fn into_silence(self, now: DateTime<Utc>) -> Result<Silence, (&'static str, String)> {
        let chars = |s: &str| s.chars().count();
        if self.matchers.is_empty() || self.matchers.len() > MAX_MATCHERS {
            return Err((
                "matchers",
                "name 1 to 32 labels, e.g. {\"alertname\": \"SlowLCP\"}".into(),
            ));
        }
        if self.matchers.iter().any(|(k, v)| {
            k.is_empty() || chars(k) > MAX_MATCHER_NAME || chars(v) > MAX_MATCHER_VALUE
        }) {
            return Err((
                "matchers",
                "label names are 1 to 64 characters, values at most 2048".into(),
            ));
        }
        if self.duration.is_some_and(|d| d.0 < 1 || d.0 > MAX_SILENCE) {
            return Err(("duration", "must be between 1 second and 366 days".into()));
        }
        if self
            .comment
            .as_ref()
            .is_some_and(|c| chars(c) > MAX_COMMENT)
        {
            return Err(("comment", "is longer than 1024 characters".into()));
        }
        let starts_at = self.starts_at.map_or(now, |t| t.0);
        let ends_at = match (self.ends_at, self.duration) {
            (Some(e), _) => e.0,
            // A start near the end of time has no room for the duration: the end of time.
            (None, Some(d)) => starts_at
                .checked_add_signed(chrono::Duration::seconds(d.0 as i64))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            (None, None) => {
                return Err(("ends_at", "give ends_at or a duration such as 2h".into()));
            }
        };
        Ok(Silence {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            matchers: self.matchers,
            starts_at,
            ends_at,
            comment: self.comment,
        })
    }
}

pub async fn save(store: &Store, s: Silence) -> Result<(), StoreError> {
    if let Some(ch) = store.clickhouse() {
        return super::shared::save_silence(ch, &s).await;
    }
    store
        .maintain(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO alert_silences (id, matchers, starts_at, ends_at, comment) \
                 VALUES (?, ?, ?, ?, ?)",
                params![
                    s.id,
                    serde_json::to_string(&s.matchers).unwrap_or_default(),
                    ts_param(s.starts_at.timestamp_micros()),
                    ts_param(s.ends_at.timestamp_micros()),
                    s.comment,
                ],
            )?;
            Ok(())
        })
        .await
}

pub async fn load(store: &Store) -> Result<Vec<Silence>, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return super::shared::silences(ch).await;
    }
    store
        .query(|c| {
            let mut stmt = c.prepare(
                "SELECT id, matchers::VARCHAR, epoch_us(starts_at), epoch_us(ends_at), comment \
                 FROM alert_silences ORDER BY starts_at",
            )?;
            let rows = stmt.query_map([], |r| {
                let m: String = r.get(1)?;
                let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or_default();
                Ok(Silence {
                    id: r.get(0)?,
                    matchers: serde_json::from_str(&m).unwrap_or_default(),
                    starts_at: at(r.get(2)?),
                    ends_at: at(r.get(3)?),
                    comment: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_and_expiry() {
        let now = Utc::now();
        let s = SilenceIn {
            matchers: [("alertname".to_string(), "SlowLCP".to_string())].into(),
            starts_at: None,
            ends_at: None,
            duration: Some(Secs(60)),
            comment: None,
        }
        .into_silence(now)
        .unwrap();
        let mut labels: BTreeMap<String, String> =
            [("alertname".to_string(), "SlowLCP".to_string())].into();
        labels.insert("route".into(), "/".into());
        assert!(s.active(now) && s.matches(&labels));
        assert!(!s.active(now + chrono::Duration::seconds(61)));
        labels.insert("alertname".into(), "Other".into());
        assert!(!s.matches(&labels));
    }
}
