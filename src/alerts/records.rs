//! The records the alert engine keeps, on either engine: the outbox's notifications and
//! group log, and silences. Here, below both the DuckDB code (`outbox`, `silences`) and the
//! ClickHouse code (`shared`) that store them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Alertmanager's notification log for one group on one channel.
#[derive(Debug, Clone)]
pub struct Group {
    pub first_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Fingerprints of the firing alerts last sent, sorted.
    pub sent_firing: Vec<String>,
}

/// What changed in the log this round.
pub enum GroupChange {
    Put(String, String, Group),
    Delete(String, String),
}

/// A notification about to be queued.
pub struct Pending {
    pub channel: String,
    pub kind: &'static str,
    pub url: String,
    pub body: Value,
    pub status: &'static str,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
