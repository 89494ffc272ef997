//! The OpenAPI schemas of the alert bodies, made from the same constants and catalogue the
//! handlers check against, so a request the schema allows is one the server takes, and
//! the other way round (the contract test fuzzes both directions). A rule's aggregations,
//! filters and split labels depend on its measure: one `oneOf` branch per kind of measure.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::measures::{Agg, Dim, Measure};
use super::rules::{
    RuleSpec, MAX_CHANNELS, MAX_CHANNEL_NAME, MAX_FILTER, MAX_LABELS, MAX_LABEL_VALUE,
    MAX_MIN_SAMPLES, MAX_NAME, MAX_SENSITIVITY, MAX_SUMMARY, MAX_WINDOW,
};
use super::silences::{
    SilenceIn, MAX_COMMENT, MAX_MATCHERS, MAX_MATCHER_NAME, MAX_MATCHER_VALUE, MAX_SILENCE,
};
use crate::config::DURATION_UNITS;
use crate::http::params::{upto, Instant};

/// The language of `rules::valid_id`.
pub const ID_PATTERN: &str = "^[a-z0-9_-]{1,64}$";
/// The language of `rules::valid_label`.
pub const LABEL_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,63}$";

/// A duration from `min` (0 or 1) to `max` seconds, as `Secs` reads it: whole seconds, or a
/// string of one count and an optional unit whose pattern allows exactly that range.
/// `max` is a whole number of days, so every unit reaches it exactly.
fn duration(min: u64, max: u64, description: &str) -> Value {
    let mut alts: Vec<String> = DURATION_UNITS
        .iter()
        .map(|&(unit, secs)| {
            let optional = if secs == 1 { "?" } else { "" };
            format!("{}{unit}{optional}", upto(max / secs))
        })
        .collect();
    if min == 0 {
        alts.push("0[smhd]?".into());
    }
    json!({
        "description": description,
        "oneOf": [
            {"type": "integer", "minimum": min, "maximum": max},
            {"type": "string", "pattern": format!("^(?:{})$", alts.join("|"))},
        ],
    })
}

fn names<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Vec<Value> {
    items
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect()
}

/// The rule body's properties for measures that allow `aggs` and have `dims`.
fn rule_branch(measures: &[Measure], aggs: &[Agg], dims: &[Dim]) -> Value {
    let filters: serde_json::Map<String, Value> = dims
        .iter()
        .map(|d| {
            (
                d.name().to_string(),
                json!({"type": "string", "maxLength": MAX_FILTER}),
            )
        })
        .collect();
    let mut props = json!({
        "id": {"type": "string", "pattern": ID_PATTERN,
            "description": "Stable id; made from the name when left out"},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
            "description": "The alertname label"},
        "summary": {"type": "string", "maxLength": MAX_SUMMARY,
            "description": "The notification's summary; made from the measure when left out"},
        "measure": {"type": "string", "enum": names(measures.iter().map(|m| m.info().id))},
        "filters": {"type": "object", "additionalProperties": false,
            "description": "Only samples whose label equals the value"},
        "aggregation": {"type": "string", "enum": names(aggs),
            "description": "How the window becomes one number; the measure's default when left out"},
        "window": duration(1, MAX_WINDOW, "The time the measure is taken over, up to 7 days; default 15m"),
        "condition": {"type": "string", "enum": ["threshold", "decline", "anomaly"],
            "description": "threshold: value op threshold; decline: down more than threshold percent from the same window a week earlier; anomaly: outside the seasonal band (op says which side)"},
        "op": {"type": "string", "enum": ["gt", "ge", "lt", "le", ">", ">=", "<", "<="]},
        "threshold": {"type": "number"},
        "sensitivity": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SENSITIVITY as u64,
            "description": "Anomaly band half-width in robust standard deviations; default 3"},
        "for": duration(0, MAX_WINDOW, "How long the condition holds before firing; alerts.default_for when left out"),
        "keep_firing_for": duration(0, MAX_WINDOW, "How long a firing alert stays firing after the condition clears; default 0"),
        "min_samples": {"type": "integer", "minimum": 0, "maximum": MAX_MIN_SAMPLES,
            "description": "Fewest samples to judge a window; alerts.min_samples when left out"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "labels": {"type": "object", "maxProperties": MAX_LABELS,
            "propertyNames": {"type": "string", "pattern": LABEL_PATTERN},
            "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE}},
        "channels": {"type": "array", "maxItems": MAX_CHANNELS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_NAME},
            "description": "Channel names; every channel when empty"},
        "enabled": {"type": "boolean"},
    });
    if !dims.is_empty() {
        props["filters"]["properties"] = Value::Object(filters);
        props["group_by"] = json!({"type": "string", "enum": names(dims.iter().map(|d| d.name())),
            "description": "One series per value of this label"});
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "measure"],
        "properties": props,
    })
}

const AGGS: [Agg; 7] = Agg::ALL;

/// The rule body as JSON Schema: one branch per (aggregations, labels) kind of measure.
pub fn rule_json() -> Value {
    let mut kinds: BTreeMap<(Vec<usize>, Vec<Dim>), Vec<Measure>> = BTreeMap::new();
    for m in Measure::ALL {
        let aggs = (0..AGGS.len()).filter(|&i| m.allows(AGGS[i])).collect();
        let dims = Dim::ALL.into_iter().filter(|d| m.has_dim(*d)).collect();
        kinds.entry((aggs, dims)).or_default().push(m);
    }
    let branches: Vec<Value> = kinds
        .iter()
        .map(|((aggs, dims), measures)| {
            let aggs: Vec<Agg> = aggs.iter().map(|&i| AGGS[i]).collect();
            rule_branch(measures, &aggs, dims)
        })
        .collect();
    json!({
        "description": "An alert rule: a measure from the catalogue (GET /api/alerts/measures), its filters, aggregation and window, and when it fires. Fields left out take their defaults; none is null.",
        "oneOf": branches,
    })
}

/// The silence body: matchers, and `ends_at` or a `duration`.
pub fn silence_json() -> Value {
    let instant = serde_json::to_value(Instant::schema()).unwrap_or(Value::Null);
    let props = json!({
        "matchers": {"type": "object", "minProperties": 1, "maxProperties": MAX_MATCHERS,
            "propertyNames": {"type": "string", "minLength": 1, "maxLength": MAX_MATCHER_NAME},
            "additionalProperties": {"type": "string", "maxLength": MAX_MATCHER_VALUE},
            "description": "Every label here must equal the alert's, e.g. {\"alertname\": \"SlowLCP\"}"},
        "starts_at": instant,
        "ends_at": instant,
        "duration": duration(1, MAX_SILENCE, "From starts_at (default now), up to 366 days; ends_at wins when both are given"),
        "comment": {"type": "string", "maxLength": MAX_COMMENT},
    });
    let shape = |required: &str| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["matchers", required],
            "properties": props,
        })
    };
    json!({
        "description": "Holds back the notifications of every alert whose labels match, until ends_at. A silence that ends before it starts or in the past is kept, inactive.",
        "anyOf": [shape("ends_at"), shape("duration")],
    })
}

/// The "send test" body.
pub fn test_json() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "channel": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_NAME,
                "description": "One channel by name; every channel when left out"},
        },
    })
}

fn schema(v: Value) -> RefOr<Schema> {
    serde_json::from_value(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "an alerts schema does not parse");
        RefOr::T(Schema::default())
    })
}

impl PartialSchema for RuleSpec {
    fn schema() -> RefOr<Schema> {
        schema(rule_json())
    }
}
impl ToSchema for RuleSpec {
    fn name() -> std::borrow::Cow<'static, str> {
        "AlertRule".into()
    }
}

impl PartialSchema for SilenceIn {
    fn schema() -> RefOr<Schema> {
        schema(silence_json())
    }
}
impl ToSchema for SilenceIn {
    fn name() -> std::borrow::Cow<'static, str> {
        "Silence".into()
    }
}

/// The body of `POST /api/alerts/test`.
pub struct TestBody;

impl PartialSchema for TestBody {
    fn schema() -> RefOr<Schema> {
        schema(test_json())
    }
}
impl ToSchema for TestBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "AlertTest".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utoipa's schema types hold every keyword used here: nothing is dropped on the way
    /// into the document.
    #[test]
    fn schemas_survive_the_trip_through_utoipa() {
        for v in [rule_json(), silence_json(), test_json()] {
            let s: RefOr<Schema> = serde_json::from_value(v.clone()).unwrap();
            let back = serde_json::to_value(&s).unwrap();
            assert_eq!(differences(&v, &back, "#"), Vec::<String>::new());
        }
    }

    /// Where `a` and `b` differ, by JSON pointer.
    fn differences(a: &Value, b: &Value, at: &str) -> Vec<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .flat_map(|k| {
                        let (l, r) = (x.get(k), y.get(k));
                        match (l, r) {
                            (Some(l), Some(r)) => differences(l, r, &format!("{at}/{k}")),
                            _ => vec![format!("{at}/{k}: {l:?} vs {r:?}")],
                        }
                    })
                    .collect()
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .flat_map(|(i, (l, r))| differences(l, r, &format!("{at}/{i}")))
                .collect(),
            _ if a == b => vec![],
            _ => vec![format!("{at}: {a} vs {b}")],
        }
    }

    #[test]
    fn every_measure_is_in_exactly_one_branch() {
        let v = rule_json();
        let branches = v["oneOf"].as_array().unwrap();
        for m in Measure::ALL {
            let n = branches
                .iter()
                .filter(|b| {
                    b["properties"]["measure"]["enum"]
                        .as_array()
                        .unwrap()
                        .contains(&json!(m.info().id))
                })
                .count();
            assert_eq!(n, 1, "{m:?}");
        }
    }
}
