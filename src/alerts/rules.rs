//! Rules: what they say, the guide's defaults, validation, and where each rule comes from
//! (built in, the config file, or the API).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::measures::{Agg, Dim, Filters, Measure};
use crate::config::Secs;
use crate::http::params::present;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The value compared with `threshold`.
    #[default]
    Threshold,
    /// The value fell by more than `threshold` percent from the same window one week earlier.
    Decline,
    /// The value left its expected band (median and MAD of the same hour of the week over
    /// the last four weeks, `sensitivity` MADs wide).
    Anomaly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Op {
    #[default]
    #[serde(rename = "gt", alias = ">")]
    Gt,
    #[serde(rename = "ge", alias = ">=")]
    Ge,
    #[serde(rename = "lt", alias = "<")]
    Lt,
    #[serde(rename = "le", alias = "<=")]
    Le,
}

impl Op {
    pub fn holds(self, v: f64, t: f64) -> bool {
        match self {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    pub fn upward(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where a rule was defined; config rules are read-only through the API, as provisioned
/// rules are in Grafana.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    Config,
    Api,
}

/// A rule as the config file and the API write it. Optional fields are left out, never
/// `null` (the OpenAPI schema says so, and `present` refuses a null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id; made from the name when absent. A `Rule` carries it outside its spec.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// The `alertname` label.
    pub name: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub summary: Option<String>,
    pub measure: Measure,
    #[serde(default)]
    pub filters: Filters,
    /// One series per value of this label (e.g. per route).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_by: Option<Dim>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregation: Option<Agg>,
    #[serde(default = "default_window")]
    pub window: Secs,
    #[serde(default)]
    pub condition: Condition,
    #[serde(default)]
    pub op: Op,
    #[serde(default)]
    pub threshold: f64,
    /// Anomaly band half-width in robust standard deviations (1.4826 MAD); default 3.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub sensitivity: Option<f64>,
    /// How long the condition must hold before firing; `alerts.default_for` when absent.
    #[serde(
        default,
        rename = "for",
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub for_: Option<Secs>,
    #[serde(default)]
    pub keep_firing_for: Secs,
    /// `alerts.min_samples` when absent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_samples: Option<Whole>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channel names; every channel when empty.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A count written `20` or `20.0` (JSON Schema's `integer` is both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Whole(pub u64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number >= 0")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Whole, E> {
                Ok(Whole(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Whole, E> {
                u64::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::custom(format!("{n} is negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Whole, E> {
                if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) {
                    Ok(Whole(f as u64))
                } else {
                    Err(E::custom(format!("{f} is not a whole number >= 0")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn default_window() -> Secs {
    Secs(900)
}

fn yes() -> bool {
    true
}

/// A rule the engine evaluates.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    pub origin: Origin,
    /// A default rule changed through the API or the config.
    pub edited: bool,
    #[serde(flatten)]
    pub spec: RuleSpec,
}

impl Rule {
    pub fn agg(&self) -> Agg {
        self.spec
            .aggregation
            .unwrap_or_else(|| self.spec.measure.default_agg())
    }

    /// "LCP p75 > 4000 ms over 15m", for notifications and the dashboard.
    pub fn describe(&self) -> String {
        let s = &self.spec;
        let info = s.measure.info();
        let agg = format!("{:?}", self.agg()).to_lowercase();
        let unit = if info.unit.is_empty() || info.unit == "%" {
            info.unit.to_string()
        } else {
            format!(" {}", info.unit)
        };
        match s.condition {
            Condition::Threshold => format!(
                "{} {agg} {} {}{unit}",
                info.label,
                s.op.symbol(),
                fmt_num(s.threshold)
            ),
            Condition::Decline => format!(
                "{} down more than {}% from a week earlier",
                info.label,
                fmt_num(s.threshold)
            ),
            Condition::Anomaly => format!("{} {agg} outside its usual band", info.label),
        }
    }
}

pub fn fmt_num(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// A rule's field that is wrong, and why.
#[derive(Debug, thiserror::Error)]
#[error("field `{field}` {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// The longest window, `for` and `keep_firing_for`: a week.
pub const MAX_WINDOW: u64 = 7 * 86_400;
pub const MAX_NAME: usize = 256;
pub const MAX_SUMMARY: usize = 1024;
pub const MAX_FILTER: usize = 2048;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_VALUE: usize = 256;
pub const MAX_CHANNELS: usize = 16;
pub const MAX_CHANNEL_NAME: usize = 64;
pub const MAX_MIN_SAMPLES: u64 = 1_000_000_000;
pub const MAX_SENSITIVITY: f64 = 100.0;

/// A label name as Prometheus writes them: a letter or `_`, then letters, digits, `_`.
pub fn valid_label(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

impl RuleSpec {
    /// Everything the OpenAPI schema (`schema::rule`) states and serde alone does not check.
    pub fn validate(&self) -> Result<(), Invalid> {
        let m = self.measure;
        let chars = |s: &str| s.chars().count();
        if self.name.is_empty() || chars(&self.name) > MAX_NAME {
            return Err(bad("name", "must be 1 to 256 characters"));
        }
        if let Some(id) = &self.id {
            if !valid_id(id) {
                return Err(bad(
                    "id",
                    "must be 1 to 64 characters of a-z, 0-9, '_' and '-'",
                ));
            }
        }
        if let Some(a) = self.aggregation {
            if !m.allows(a) {
                return Err(bad(
                    "aggregation",
                    format!(
                        "{a:?} does not apply to {}; use {:?}",
                        m.info().id,
                        m.default_agg()
                    )
                    .to_lowercase(),
                ));
            }
        }
        for (d, v) in self.filters.iter() {
            if !m.has_dim(d) {
                return Err(bad(
                    "filters",
                    format!("{} has no {} to filter on", m.info().id, d.name()),
                ));
            }
            if chars(v) > MAX_FILTER {
                return Err(bad("filters", "values are at most 2048 characters"));
            }
        }
        if let Some(d) = self.group_by {
            if !m.has_dim(d) {
                return Err(bad(
                    "group_by",
                    format!("{} cannot be split by {}", m.info().id, d.name()),
                ));
            }
        }
        if self.window.0 < 1 || self.window.0 > MAX_WINDOW {
            return Err(bad("window", "must be between 1 second and 7 days"));
        }
        if self.for_.is_some_and(|f| f.0 > MAX_WINDOW) {
            return Err(bad("for", "must be at most 7 days"));
        }
        if self.keep_firing_for.0 > MAX_WINDOW {
            return Err(bad("keep_firing_for", "must be at most 7 days"));
        }
        if !self.threshold.is_finite() {
            return Err(bad("threshold", "must be a finite number"));
        }
        if let Some(s) = self.sensitivity {
            if !(s.is_finite() && s > 0.0 && s <= MAX_SENSITIVITY) {
                return Err(bad(
                    "sensitivity",
                    "must be a number above 0 and at most 100 (MADs)",
                ));
            }
        }
        if self.min_samples.is_some_and(|n| n.0 > MAX_MIN_SAMPLES) {
            return Err(bad("min_samples", "must be at most 1000000000"));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(bad("labels", "at most 32 labels"));
        }
        for (k, v) in &self.labels {
            if !valid_label(k) || chars(v) > MAX_LABEL_VALUE {
                return Err(bad(
                    "labels",
                    format!(
                        "{k:?} is not a label name like team or service (or its value is longer than 256 characters)"
                    ),
                ));
            }
        }
        if self.channels.len() > MAX_CHANNELS
            || self
                .channels
                .iter()
                .any(|c| c.is_empty() || chars(c) > MAX_CHANNEL_NAME)
        {
            return Err(bad(
                "channels",
                "at most 16 channel names of 1 to 64 characters",
            ));
        }
        if self
            .summary
            .as_ref()
            .is_some_and(|s| chars(s) > MAX_SUMMARY)
        {
            return Err(bad("summary", "is longer than 1024 characters"));
        }
        Ok(())
    }

    /// The rule's id: given, or made from its name.
    pub fn rule_id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let mut id = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c.to_ascii_lowercase());
            } else if !id.ends_with('_') && !id.is_empty() {
                id.push('_');
            }
        }
        let id = id.trim_end_matches('_');
        let id: String = id.chars().take(64).collect();
        if id.is_empty() {
            "rule".into()
        } else {
            id
        }
    }
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[allow(clippy::too_many_arguments)]
fn rule(
    id: &str,
    name: &str,
    measure: Measure,
    group_by: Option<Dim>,
    condition: Condition,
    op: Op,
    threshold: f64,
    window: u64,
    severity: Severity,
) -> Rule {
    Rule {
        id: id.into(),
        origin: Origin::Default,
        edited: false,
        spec: RuleSpec {
            id: None,
            name: name.into(),
            summary: None,
            measure,
            filters: Filters::default(),
            group_by,
            aggregation: None,
            window: Secs(window),
            condition,
            op,
            threshold,
            sensitivity: None,
            for_: None,
            keep_firing_for: Secs(0),
            min_samples: None,
            severity,
            labels: BTreeMap::new(),
            channels: Vec::new(),
            enabled: true,
        },
    }
}

/// The guide's "Monitoring and Alerts" thresholds, on from the first start.
pub fn defaults() -> Vec<Rule> {
    use Condition::{Decline, Threshold};
    use Measure as M;
    use Op::{Gt, Lt};
    use Severity::{Critical, Warning};
    let route = Some(Dim::Route);
    let mut v = vec![
        rule(
            "perf_lcp",
            "SlowLCP",
            M::Lcp,
            route,
            Threshold,
            Gt,
            4000.0,
            900,
            Warning,
        ),
        rule(
            "perf_fid",
            "SlowFID",
            M::Fid,
            route,
            Threshold,
            Gt,
            300.0,
            900,
            Warning,
        ),
        rule(
            "perf_cls",
            "HighCLS",
            M::Cls,
            route,
            Threshold,
            Gt,
            0.25,
            900,
            Warning,
        ),
        rule(
            "perf_error_rate",
            "FrontendErrorRate",
            M::FrontendErrorRate,
            None,
            Threshold,
            Gt,
            5.0,
            900,
            Critical,
        ),
        rule(
            "ai_latency",
            "SlowAIResponses",
            M::AiLatency,
            None,
            Threshold,
            Gt,
            5000.0,
            900,
            Warning,
        ),
        rule(
            "ai_error_rate",
            "AIErrorRate",
            M::AiErrorRate,
            None,
            Threshold,
            Gt,
            5.0,
            900,
            Critical,
        ),
        rule(
            "ai_cache_hit_rate",
            "LowAICacheHitRate",
            M::AiCacheHitRate,
            None,
            Threshold,
            Lt,
            20.0,
            900,
            Warning,
        ),
        rule(
            "ai_tokens",
            "HighAITokenUsage",
            M::AiTokens,
            None,
            Threshold,
            Gt,
            3000.0,
            900,
            Warning,
        ),
        rule(
            "db_query_time",
            "SlowQueries",
            M::DbQueryTime,
            None,
            Threshold,
            Gt,
            2000.0,
            900,
            Warning,
        ),
        rule(
            "db_slow_rate",
            "HighSlowQueryRate",
            M::DbSlowQueryRate,
            None,
            Threshold,
            Gt,
            20.0,
            900,
            Warning,
        ),
        rule(
            "db_cache_hit_rate",
            "LowQueryCacheHitRate",
            M::DbCacheHitRate,
            None,
            Threshold,
            Lt,
            30.0,
            900,
            Warning,
        ),
        rule(
            "growth_dau_decline",
            "DailyActiveUsersDecline",
            M::ActiveUsers,
            None,
            Decline,
            Gt,
            20.0,
            86_400,
            Warning,
        ),
        rule(
            "growth_conversion_decline",
            "ConversionRateDecline",
            M::ConversionRate,
            None,
            Decline,
            Gt,
            15.0,
            86_400,
            Warning,
        ),
        rule(
            "growth_error_rate",
            "SessionErrorRate",
            M::SessionErrorRate,
            None,
            Threshold,
            Gt,
            1.0,
            3600,
            Warning,
        ),
        // Not in the guide: a full disk stops ingest, and whoever runs the server should
        // hear of it before a user does (and a little before, while there is room).
        rule(
            "storage_disk_full",
            "DiskFull",
            M::DiskFull,
            None,
            Threshold,
            Gt,
            0.0,
            60,
            Critical,
        ),
        rule(
            "storage_disk_low",
            "DiskAlmostFull",
            M::DiskFree,
            None,
            Threshold,
            Lt,
            5.0,
            300,
            Warning,
        ),
    ];
    // The guide's "query time > 2000 ms" is about single queries: the average hides them.
    for r in &mut v {
        if r.id == "db_query_time" {
            r.spec.aggregation = Some(Agg::P95);
        }
        if r.id == "ai_latency" {
            r.spec.aggregation = Some(Agg::P75);
        }
        // Ingest is already refused: no reason to wait for a second reading.
        if r.id == "storage_disk_full" {
            r.spec.for_ = Some(Secs(0));
        }
    }
    v
}

/// The rule set: the defaults, then the config file's rules (a rule with a default's id
/// or name replaces it), then the API's (which may edit defaults, never config rules).
pub fn merge(config: Vec<RuleSpec>, api: Vec<RuleSpec>) -> Vec<Rule> {
    let mut rules = defaults();
    let put = |spec: RuleSpec, origin: Origin, rules: &mut Vec<Rule>| {
        let id = spec.rule_id();
        let existing = rules
            .iter()
            .position(|r| r.id == id || (origin == Origin::Config && r.spec.name == spec.name));
        match existing {
            Some(i) if rules[i].origin == Origin::Config && origin == Origin::Api => {}
            Some(i) => {
                let was_default = rules[i].origin == Origin::Default || rules[i].edited;
                let id = rules[i].id.clone();
                rules[i] = Rule {
                    id,
                    origin: if was_default && origin == Origin::Api {
                        Origin::Default
                    } else {
                        origin
                    },
                    edited: was_default,
                    spec: RuleSpec { id: None, ..spec },
                };
            }
            None => rules.push(Rule {
                id,
                origin,
                edited: false,
                spec: RuleSpec { id: None, ..spec },
            }),
        }
    };
    for s in config {
        put(s, Origin::Config, &mut rules);
    }
    for s in api {
        put(s, Origin::Api, &mut rules);
    }
    rules
}

/// Config rules as the config file holds them (TOML tables), checked.
pub fn from_config(tables: &[toml::Table]) -> Result<Vec<RuleSpec>, String> {
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let spec: RuleSpec = toml::Value::Table(t.clone())
                .try_into()
                .map_err(|e| format!("alerts.rules[{i}]: {e}"))?;
            spec.validate()
                .map_err(|e| format!("alerts.rules[{i}]: {e}"))?;
            Ok(spec)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_guides_and_valid() {
        let d = defaults();
        assert_eq!(d.len(), 16);
        for r in &d {
            r.spec
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", r.id));
        }
        let lcp = d.iter().find(|r| r.id == "perf_lcp").unwrap();
        assert_eq!(lcp.agg(), Agg::P75);
        assert_eq!(lcp.spec.threshold, 4000.0);
    }

    #[test]
    fn config_replaces_a_default_by_name_and_api_cannot_edit_it() {
        let mut spec = defaults()[0].spec.clone();
        spec.id = None;
        spec.threshold = 3000.0;
        let mut api = spec.clone();
        api.id = Some("perf_lcp".into());
        api.threshold = 1.0;
        let rules = merge(vec![spec], vec![api]);
        let lcp = rules.iter().find(|r| r.id == "perf_lcp").unwrap();
        assert_eq!(lcp.origin, Origin::Config);
        assert_eq!(lcp.spec.threshold, 3000.0);
        assert_eq!(rules.len(), defaults().len());
    }

    #[test]
    fn null_is_not_absent() {
        let ok: RuleSpec =
            serde_json::from_str(r#"{"name":"a","measure":"lcp","min_samples":5.0,"window":"5m"}"#)
                .unwrap();
        assert_eq!(ok.min_samples, Some(Whole(5)));
        assert_eq!(ok.window, Secs(300));
        for bad in [
            r#"{"name":"a","measure":"lcp","summary":null}"#,
            r#"{"name":"a","measure":"lcp","for":null}"#,
            r#"{"name":"a","measure":"lcp","min_samples":5.5}"#,
            r#"{"name":"a","measure":"lcp","window":"1h30m"}"#,
        ] {
            assert!(serde_json::from_str::<RuleSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_specs_name_their_field() {
        let mut s = defaults()[0].spec.clone();
        s.aggregation = Some(Agg::Rate);
        assert_eq!(s.validate().unwrap_err().field, "aggregation");
        let mut s = defaults()[0].spec.clone();
        s.filters.model = Some("gpt".into());
        assert_eq!(s.validate().unwrap_err().field, "filters");
        let mut s = defaults()[0].spec.clone();
        s.window = Secs(0);
        assert_eq!(s.validate().unwrap_err().field, "window");
        let mut s = defaults()[0].spec.clone();
        s.labels.insert("9lives".into(), "x".into());
        assert_eq!(s.validate().unwrap_err().field, "labels");
    }
}
