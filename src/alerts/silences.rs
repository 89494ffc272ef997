//! Silences: label matchers with an expiry. A silenced alert still changes state and shows
//! on the dashboard; only its notifications are held back, as in Alertmanager.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::config::Secs;
use crate::store::{ts_param, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    pub id: String,
    /// Every label here must equal the alert's.
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: Option<String>,
}

impl Silence {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// `POST /api/alerts/silences`: matchers and either `ends_at` or `duration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceIn {
    pub matchers: BTreeMap<String, String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// `2h`, `30m`, or seconds; used when `ends_at` is absent.
    pub duration: Option<Secs>,
    pub comment: Option<String>,
}

impl SilenceIn {
    pub fn into_silence(self, now: DateTime<Utc>) -> Result<Silence, (&'static str, String)> {
        if self.matchers.is_empty() {
            return Err((
                "matchers",
                "name at least one label, e.g. {\"alertname\": \"SlowLCP\"}".into(),
            ));
        }
        if self.matchers.len() > 32
            || self
                .matchers
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > 64 || v.chars().count() > 2048)
        {
            return Err((
                "matchers",
                "at most 32 labels with names of 1 to 64 characters".into(),
            ));
        }
        let starts_at = self.starts_at.unwrap_or(now);
        let ends_at = match (self.ends_at, self.duration) {
            (Some(e), _) => e,
            (None, Some(d)) => starts_at + chrono::Duration::seconds(d.0.min(366 * 86_400) as i64),
            (None, None) => {
                return Err(("ends_at", "give ends_at or a duration such as 2h".into()));
            }
        };
        if ends_at <= starts_at || ends_at <= now {
            return Err((
                "ends_at",
                "must be after the start and in the future".into(),
            ));
        }
        if self
            .comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > 1024)
        {
            return Err(("comment", "is longer than 1024 characters".into()));
        }
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
