//! The state of one alert series: what evaluation writes, history keeps and notification
//! reads, so those three need not import each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::anomaly::Band;
use super::fingerprint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Inactive,
    Pending,
    Firing,
    Resolved,
    #[serde(rename = "nodata")]
    NoData,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
            State::NoData => "nodata",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "pending" => State::Pending,
            "firing" => State::Firing,
            "resolved" => State::Resolved,
            "nodata" => State::NoData,
            _ => State::Inactive,
        }
    }

    /// Higher is worse: what a card or a rule shows for several series.
    pub fn rank(self) -> u8 {
        match self {
            State::Firing => 4,
            State::Pending => 3,
            State::NoData => 1,
            State::Resolved => 2,
            State::Inactive => 0,
        }
    }
}

/// One series of a rule (the rule itself, or the rule on one route) and its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub rule_id: String,
    /// The split label's value, "" when the rule is not split.
    pub series: String,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub value: Option<f64>,
    pub samples: f64,
    /// Decline rules: the same window a week earlier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    /// Anomaly rules: the expected band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    pub active_since: Option<DateTime<Utc>>,
    pub firing_since: Option<DateTime<Utc>>,
    pub last_true: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub evaluated_at: DateTime<Utc>,
}

impl Series {
    /// A series not yet evaluated: inactive, no value, its fingerprint from its labels.
    pub fn new(
        rule_id: String,
        series: String,
        labels: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Series {
        Series {
            rule_id,
            series,
            fingerprint: fingerprint(&labels),
            labels,
            state: State::Inactive,
            value: None,
            samples: 0.0,
            reference: None,
            band: None,
            active_since: None,
            firing_since: None,
            last_true: None,
            resolved_at: None,
            evaluated_at: now,
        }
    }
}
