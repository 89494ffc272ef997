//! Funnels: ordered steps within a conversion window from the first step, over
//! `user_events` (ad hoc) or the guide's `conversions` table (by funnel name).
//!
//! Definition: a person enters at their first step-1 event in the range. Each next step
//! counts at its earliest matching event strictly after the previous step's time and no
//! later than the window after the entry. Every event must lie in the range. Times are
//! event times (when the person acted, see `http::event_time`), whose microsecond digits
//! keep the order of one request's items: an untimed batch still reads in array order.

use duckdb::types::Value;
use duckdb::Connection;
use serde::Serialize;

use crate::store::{Store, StoreError};

pub const MIN_STEPS: usize = 2;
pub const MAX_STEPS: usize = 10;
pub const MAX_FILTERS: usize = 10;
/// Breakdown values returned, most entries first.
pub const MAX_BREAKDOWN_VALUES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Events,
    /// The rows of one funnel in `conversions`; a step is its `step` column.
    Conversions {
        funnel: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Neq,
}

/// A property condition; values compare as text (numbers and booleans in their JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub property: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub event: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone)]
pub struct FunnelSpec {
    pub source: Source,
    pub steps: Vec<Step>,
    pub window_us: i64,
    pub from_us: i64,
    pub to_us: i64,
    /// A property of the entering (step-1) event to split by.
    pub breakdown: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub step: usize,
    pub event: String,
    pub users: u64,
    pub conversion_from_first: f64,
    pub conversion_from_previous: f64,
    /// People of the previous step who did not reach this one.
    pub drop_off: u64,
    pub drop_off_rate: f64,
    /// Median seconds from the previous step; none for the first step or when nobody got here.
    pub median_seconds_from_previous: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownRow {
    /// The property's value on the entering event; null when it had none.
    pub value: Option<String>,
    pub steps: Vec<StepResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    pub steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breakdowns: Vec<BreakdownRow>,
}

/// JSON pointer to a top-level property: safe for any key, and bound as a parameter.
pub fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The funnel's SQL and its parameters, in text order. Also run as-is by the benchmark.
pub fn sql(spec: &FunnelSpec) -> (String, Vec<Value>) {
    let (table, name) = match spec.source {
        Source::Events => ("user_events", "event"),
        Source::Conversions { .. } => ("conversions", "step"),
    };
    let n = spec.steps.len();
    let w = spec.window_us;
    let mut p: Vec<Value> = Vec::new();
    // People are joined on a 64-bit hash of their id (a collision among a million people
    // is about 1 in 3e7): integer joins cut the 4-step funnel on 10M events by a fifth.
    let mut s = String::from(
        "WITH e AS (SELECT hash(visitor_id) AS v, epoch_us(event_time::TIMESTAMP) AS t",
    );
    if spec.breakdown.is_some() {
        s.push_str(", properties AS p");
    }
    for (i, step) in spec.steps.iter().enumerate() {
        s.push_str(&format!(", ({name} = ?"));
        p.push(Value::Text(step.event.clone()));
        for f in &step.filters {
            match f.op {
                Op::Eq => s.push_str(" AND json_extract_string(properties, ?) = ?"),
                Op::Neq => s.push_str(" AND json_extract_string(properties, ?) IS DISTINCT FROM ?"),
            }
            p.push(Value::Text(pointer(&f.property)));
            p.push(Value::Text(f.value.clone()));
        }
        s.push_str(&format!(") AS s{}", i + 1));
    }
    s.push_str(&format!(
        " FROM {table} WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL AND {name} IN ("
    ));
    p.push(crate::store::ts_param(spec.from_us));
    p.push(crate::store::ts_param(spec.to_us));
    let mut names: Vec<&str> = spec.steps.iter().map(|st| st.event.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    s.push_str(&vec!["?"; names.len()].join(", "));
    p.extend(names.iter().map(|n| Value::Text(n.to_string())));
    s.push(')');
    if let Source::Conversions { funnel } = &spec.source {
        s.push_str(" AND funnel = ?");
        p.push(Value::Text(funnel.clone()));
    }
    s.push_str("), f1 AS (SELECT v, min(t) AS t1, min(t) AS tk FROM e WHERE s1 GROUP BY v)");
    for k in 2..=n {
        s.push_str(&format!(
            ", f{k} AS (SELECT q.v, q.t1, min(e.t) AS tk FROM f{prev} q JOIN e ON e.v = q.v \
             WHERE e.s{k} AND e.t > q.tk AND e.t <= q.t1 + {w} GROUP BY q.v, q.t1)",
            prev = k - 1
        ));
    }
    if let Some(key) = &spec.breakdown {
        s.push_str(
            ", fb AS (SELECT f1.v, min(json_extract_string(e.p, ?)) AS b FROM f1 JOIN e ON e.v = f1.v \
             WHERE e.s1 AND e.t = f1.t1 GROUP BY f1.v)",
        );
        p.push(Value::Text(pointer(key)));
        s.push_str(" SELECT fb.b, grouping(fb.b) AS total");
    } else {
        s.push_str(" SELECT NULL::VARCHAR AS b, 1 AS total");
    }
    for k in 1..=n {
        s.push_str(&format!(", count(f{k}.v)"));
    }
    for k in 2..=n {
        s.push_str(&format!(", median(f{k}.tk - f{prev}.tk)", prev = k - 1));
    }
    s.push_str(" FROM f1");
    for k in 2..=n {
        s.push_str(&format!(" LEFT JOIN f{k} ON f{k}.v = f1.v"));
    }
    if spec.breakdown.is_some() {
        s.push_str(" LEFT JOIN fb ON fb.v = f1.v GROUP BY GROUPING SETS ((fb.b), ())");
    }
    (s, p)
}

pub async fn run(store: &Store, spec: FunnelSpec) -> Result<Funnel, StoreError> {
    store.query(move |conn| run_sync(conn, &spec)).await
}

pub fn run_sync(conn: &Connection, spec: &FunnelSpec) -> Result<Funnel, StoreError> {
    let n = spec.steps.len();
    let (text, params) = sql(spec);
    let mut stmt = conn.prepare(&text)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params))?;
    let mut total: Option<Vec<StepResult>> = None;
    let mut breakdowns = Vec::new();
    while let Some(r) = rows.next()? {
        let value: Option<String> = r.get(0)?;
        let is_total: i64 = r.get(1)?;
        let mut users = Vec::with_capacity(n);
        for k in 0..n {
            users.push(r.get::<_, i64>(2 + k)?.max(0) as u64);
        }
        let mut medians = vec![None];
        for k in 1..n {
            let us: Option<f64> = r.get(2 + n + k - 1)?;
            // Event times are whole milliseconds plus a place in a request in the
            // microsecond digits: the median is told to the millisecond.
            medians.push(us.map(|v| (v / 1e3).round() / 1e3));
        }
        let steps = results(&spec.steps, &users, &medians);
        if is_total != 0 {
            total = Some(steps);
        } else {
            breakdowns.push(BreakdownRow { value, steps });
        }
    }
    breakdowns.sort_by(|a, b| {
        b.steps[0]
            .users
            .cmp(&a.steps[0].users)
            .then_with(|| a.value.cmp(&b.value))
    });
    breakdowns.truncate(MAX_BREAKDOWN_VALUES);
    Ok(Funnel {
        steps: total.unwrap_or_else(|| results(&spec.steps, &vec![0; n], &vec![None; n])),
        breakdown: spec.breakdown.clone(),
        breakdowns,
    })
}

/// Rates and drop-offs from the people per step.
pub fn results(steps: &[Step], users: &[u64], medians: &[Option<f64>]) -> Vec<StepResult> {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let first = users.first().copied().unwrap_or(0);
    steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let prev = if i == 0 { users[0] } else { users[i - 1] };
            StepResult {
                step: i + 1,
                event: st.event.clone(),
                users: users[i],
                conversion_from_first: ratio(users[i], first),
                conversion_from_previous: ratio(users[i], prev),
                drop_off: prev - users[i].min(prev),
                drop_off_rate: if prev == 0 {
                    0.0
                } else {
                    1.0 - ratio(users[i], prev)
                },
                median_seconds_from_previous: medians.get(i).copied().flatten(),
            }
        })
        .collect()
}
