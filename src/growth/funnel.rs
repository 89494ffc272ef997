//! Funnels: ordered steps within a conversion window from the first step, over
//! `user_events` (ad hoc) or the guide's `conversions` table (by funnel name).
//!
//! Definition: a person enters at their first step-1 event in the range. Each next step
//! counts at its earliest matching event strictly after the previous step's time and no
//! later than the window after the entry. Every event must lie in the range. Times are
//! event times (when the person acted, see `http::event_time`), whose microsecond digits
//! keep the order of one request's items: an untimed batch still reads in array order.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
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

/// The funnel's one statement and its parameters, in text order; also run as-is by the
/// benchmark. One scan of the range's rows of the steps' names, only the columns the
/// funnel needs: the person (a 64-bit hash of their id: a collision among a million
/// people is about 1 in 3e7), the event time, the hash of the name, a bit per step with
/// filters the row matches and, with a breakdown, the property on rows of the first step.
/// `run_sync` then walks the steps in Rust: self-joins of the rows per step cost 700 ms
/// on the 30-day, 4-step funnel of the 10M-event demo file, the scan about a third.
pub fn sql(spec: &FunnelSpec) -> (String, Vec<Value>) {
    let (table, name) = match spec.source {
        Source::Events => ("user_events", "event"),
        Source::Conversions { .. } => ("conversions", "step"),
    };
    let mut p: Vec<Value> = Vec::new();
    let mut bits = Vec::with_capacity(spec.steps.len());
    let mut first = String::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let mut cond = format!("{name} = ?");
        let mut cp = vec![Value::Text(step.event.clone())];
        for f in &step.filters {
            match f.op {
                Op::Eq => cond.push_str(" AND json_extract_string(properties, ?) = ?"),
                Op::Neq => {
                    cond.push_str(" AND json_extract_string(properties, ?) IS DISTINCT FROM ?")
                }
            }
            cp.push(Value::Text(pointer(&f.property)));
            cp.push(Value::Text(f.value.clone()));
        }
        if i == 0 {
            first = cond.clone();
        }
        bits.push((cond, cp, 1u32 << i));
    }
    // A step without filters is told by the hash of the row's name (`by_name`): cheaper
    // than comparing its text once per step; only steps with filters test them here.
    let mut s = format!(
        "SELECT hash(visitor_id) AS v, epoch_us(event_time::TIMESTAMP) AS t, hash({name}) AS h, (0"
    );
    for ((cond, cp, bit), step) in bits.iter().zip(&spec.steps) {
        if !step.filters.is_empty() {
            s.push_str(&format!(" | CASE WHEN {cond} THEN {bit} ELSE 0 END"));
            p.extend(cp.iter().cloned());
        }
    }
    s.push_str(")::UINTEGER AS m");
    if let Some(key) = &spec.breakdown {
        s.push_str(&format!(
            ", CASE WHEN {first} THEN json_extract_string(properties, ?) END AS b"
        ));
        p.extend(bits[0].1.iter().cloned());
        p.push(Value::Text(pointer(key)));
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
    (s, p)
}

/// Per distinct hash of a name (DuckDB's `hash`, as the scan gives it), the bits of the
/// steps without filters that name matches.
fn by_name(conn: &Connection, steps: &[Step]) -> Result<Vec<(u64, u32)>, StoreError> {
    let mut out: Vec<(u64, u32)> = Vec::new();
    let mut stmt = conn.prepare("SELECT hash(?::VARCHAR)")?;
    for (i, step) in steps.iter().enumerate() {
        if !step.filters.is_empty() {
            continue;
        }
        let h: u64 = stmt.query_row([&step.event], |r| r.get(0))?;
        match out.iter_mut().find(|(x, _)| *x == h) {
            Some((_, bits)) => *bits |= 1 << i,
            None => out.push((h, 1 << i)),
        }
    }
    Ok(out)
}

pub async fn run(store: &Store, spec: FunnelSpec) -> Result<Funnel, StoreError> {
    store.query(move |conn| run_sync(conn, &spec)).await
}

/// The rows of one step: (person, time), in scan order.
type StepRows = Vec<(u64, i64)>;

/// The person's entry (first step-1 time) and, once reached, each later step's time.
struct Path {
    t1: i64,
    /// The time of the last step reached so far, and how many steps that is.
    tk: i64,
    /// The earliest time of the step being walked that qualifies, if any yet.
    next: i64,
    reached: u32,
}

pub fn run_sync(conn: &Connection, spec: &FunnelSpec) -> Result<Funnel, StoreError> {
    let n = spec.steps.len();
    let (text, params) = sql(spec);
    let names = by_name(conn, &spec.steps)?;
    let mut stmt = conn.prepare(&text)?;
    let bad =
        |what: &str| StoreError::Internal(format!("funnel read: {what} has an unexpected type"));
    let mut per_step: Vec<StepRows> = vec![Vec::new(); n];
    // Step-1 rows with their breakdown value, kept only with a breakdown.
    let mut entering: Vec<(u64, i64, Option<String>)> = Vec::new();
    for batch in stmt.query_arrow(duckdb::params_from_iter(params))? {
        let v = batch
            .column(0)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| bad("v"))?;
        let t = batch
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("t"))?;
        let h = batch
            .column(2)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| bad("h"))?;
        let m = batch
            .column(3)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("m"))?;
        let b = spec.breakdown.as_ref().map(|_| batch.column(4));
        for r in 0..batch.num_rows() {
            let (v, t, h) = (v.value(r), t.value(r), h.value(r));
            let mut m = m.value(r);
            if let Some((_, bits)) = names.iter().find(|(x, _)| *x == h) {
                m |= bits;
            }
            if let Some(b) = b {
                if m & 1 != 0 {
                    let value = b
                        .is_valid(r)
                        .then(|| super::rollup_days::text_at(b.as_ref(), r));
                    entering.push((v, t, value));
                }
            }
            while m != 0 {
                let k = m.trailing_zeros() as usize;
                m &= m - 1;
                if let Some(rows) = per_step.get_mut(k) {
                    rows.push((v, t));
                }
            }
        }
    }
    Ok(walk(spec, &per_step, &entering))
}

/// The definition, step by step: the entry is each person's earliest step-1 time; step k
/// is their earliest step-k time strictly after step k-1's and at most the window after
/// the entry. A pass over each step's rows with one lookup per row.
fn walk(
    spec: &FunnelSpec,
    per_step: &[StepRows],
    entering: &[(u64, i64, Option<String>)],
) -> Funnel {
    let n = spec.steps.len();
    // Small entries: one lookup per row, so the table should stay in cache.
    let mut people: HashMap<u64, Path, BuildHasherDefault<super::rollup_days::Fx>> =
        HashMap::with_capacity_and_hasher(per_step[0].len() / 2, Default::default());
    for &(v, t) in &per_step[0] {
        people
            .entry(v)
            .and_modify(|p| p.t1 = p.t1.min(t))
            .or_insert(Path {
                t1: t,
                tk: t,
                next: i64::MAX,
                reached: 1,
            });
    }
    for p in people.values_mut() {
        p.tk = p.t1;
    }
    // The breakdown value of each person's entering event(s): the least non-null one.
    let mut entry_value: HashMap<u64, Option<String>, BuildHasherDefault<super::rollup_days::Fx>> =
        HashMap::default();
    for &(v, t, ref value) in entering {
        if people.get(&v).is_some_and(|p| p.t1 == t) {
            let b = entry_value.entry(v).or_insert(None);
            if let Some(value) = value {
                if b.as_ref().is_none_or(|b| value < b) {
                    *b = Some(value.clone());
                }
            }
        }
    }
    // Per step, each person's gap from the previous step (for the medians).
    let mut gaps: Vec<Vec<(u64, i64)>> = vec![Vec::new(); n];
    for k in 1..n {
        let step = k as u32;
        for &(v, t) in &per_step[k] {
            let Some(p) = people.get_mut(&v) else {
                continue;
            };
            if p.reached == step && t > p.tk && t <= p.t1 + spec.window_us && t < p.next {
                p.next = t;
            }
        }
        for (v, p) in people.iter_mut() {
            if p.reached == step && p.next != i64::MAX {
                gaps[k].push((*v, p.next - p.tk));
                p.tk = p.next;
                p.next = i64::MAX;
                p.reached = step + 1;
            }
        }
    }
    // Group 0 is everyone; with a breakdown, group 1 + i is the i-th value.
    let mut values: Vec<Option<String>> = Vec::new();
    let mut group: HashMap<u64, usize, BuildHasherDefault<super::rollup_days::Fx>> =
        HashMap::default();
    if spec.breakdown.is_some() {
        let mut index: HashMap<Option<String>, usize> = HashMap::new();
        for v in people.keys() {
            let b = entry_value.get(v).cloned().flatten();
            let g = *index.entry(b.clone()).or_insert_with(|| {
                values.push(b);
                values.len()
            });
            group.insert(*v, g);
        }
    }
    let groups = values.len() + 1;
    let mut users = vec![vec![0u64; n]; groups];
    for (v, p) in &people {
        let mut add = |g: usize| {
            users[g]
                .iter_mut()
                .take(p.reached as usize)
                .for_each(|u| *u += 1)
        };
        add(0);
        if let Some(&g) = group.get(v) {
            add(g);
        }
    }
    let mut medians = vec![vec![None; n]; groups];
    for (k, g) in gaps.iter().enumerate().skip(1) {
        let mut per: Vec<Vec<i64>> = vec![Vec::new(); groups];
        for &(v, d) in g {
            per[0].push(d);
            if let Some(&i) = group.get(&v) {
                per[i].push(d);
            }
        }
        for (i, mut d) in per.into_iter().enumerate() {
            // Event times are whole milliseconds plus a place in a request in the
            // microsecond digits: the median is told to the millisecond.
            medians[i][k] = median(&mut d).map(|us| (us / 1e3).round() / 1e3);
        }
    }
    let steps = results(&spec.steps, &users[0], &medians[0]);
    let mut breakdowns: Vec<BreakdownRow> = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| BreakdownRow {
            value,
            steps: results(&spec.steps, &users[i + 1], &medians[i + 1]),
        })
        .collect();
    breakdowns.sort_by(|a, b| {
        b.steps[0]
            .users
            .cmp(&a.steps[0].users)
            .then_with(|| a.value.cmp(&b.value))
    });
    breakdowns.truncate(MAX_BREAKDOWN_VALUES);
    Funnel {
        steps,
        breakdown: spec.breakdown.clone(),
        breakdowns,
    }
}

/// The median as DuckDB's `median` gives it: the mean of the two middle values of an even
/// count.
fn median(v: &mut [i64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(match n % 2 {
        1 => v[n / 2] as f64,
        _ => (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0,
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
