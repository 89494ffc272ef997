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
/// people is about 1 in 3e7), the event time and a bit per step the row matches and,
/// with a breakdown, the property on rows of the first step. `run_sync` then walks the
/// steps in Rust: self-joins of the rows per step cost 700 ms on the 30-day, 4-step
/// funnel of the 10M-event demo file.
///
/// The rows are found by the hash of their name, not by `name IN (..)`: DuckDB hashes a
/// dictionary-compressed column once per distinct value, while the text `IN` compares
/// every row and merges one selection per name (about 3x the time of the whole filter
/// on that file). A row a hash lets through by collision gets no bit from the exact
/// comparisons that make `m`, and the walk skips it.
pub fn sql(spec: &FunnelSpec) -> (String, Vec<Value>) {
    let (table, name) = match spec.source {
        Source::Events => ("user_events", "event"),
        Source::Conversions { .. } => ("conversions", "step"),
    };
    let mut p: Vec<Value> = Vec::new();
    // Steps without filters are told by one `CASE` on the name, a bit per step sharing it.
    let mut plain: Vec<(&str, u32)> = Vec::new();
    for (i, step) in spec.steps.iter().enumerate() {
        if step.filters.is_empty() {
            match plain.iter_mut().find(|(n, _)| *n == step.event) {
                Some((_, bits)) => *bits |= 1 << i,
                None => plain.push((&step.event, 1 << i)),
            }
        }
    }
    let mut s =
        String::from("SELECT hash(visitor_id) AS v, epoch_us(event_time::TIMESTAMP) AS t, (");
    if plain.is_empty() {
        s.push('0');
    } else {
        s.push_str(&format!("CASE {name}"));
        for (n, bits) in &plain {
            s.push_str(&format!(" WHEN ? THEN {bits}"));
            p.push(Value::Text(n.to_string()));
        }
        s.push_str(" ELSE 0 END");
    }
    let mut first: (String, Vec<Value>) = (String::new(), Vec::new());
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
        if !step.filters.is_empty() {
            s.push_str(&format!(
                " | CASE WHEN {cond} THEN {} ELSE 0 END",
                1u32 << i
            ));
            p.extend(cp.iter().cloned());
        }
        if i == 0 {
            first = (cond, cp);
        }
    }
    s.push_str(")::UINTEGER AS m");
    if let Some(key) = &spec.breakdown {
        s.push_str(&format!(
            ", CASE WHEN {} THEN json_extract_string(properties, ?) END AS b",
            first.0
        ));
        p.extend(first.1);
        p.push(Value::Text(pointer(key)));
    }
    s.push_str(&format!(
        " FROM {table} WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL AND hash({name}) IN ("
    ));
    p.push(crate::store::ts_param(spec.from_us));
    p.push(crate::store::ts_param(spec.to_us));
    let mut names: Vec<&str> = spec.steps.iter().map(|st| st.event.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    s.push_str(&vec!["hash(?::VARCHAR)"; names.len()].join(", "));
    p.extend(names.iter().map(|n| Value::Text(n.to_string())));
    s.push(')');
    if let Source::Conversions { funnel } = &spec.source {
        s.push_str(" AND funnel = ?");
        p.push(Value::Text(funnel.clone()));
    }
    (s, p)
}

pub async fn run(store: &Store, spec: FunnelSpec) -> Result<Funnel, StoreError> {
    store.query(move |conn| run_sync(conn, &spec)).await
}

/// The rows of one step: (person, time), in scan order.
type StepRows = Vec<(u64, i64)>;

/// A step-1 row with its breakdown value: (person, time, value).
type Entering = (u64, i64, Option<String>);

/// How many parts the scan's rows are split into, by the top bits of the person's hash.
/// The walk looks each row's person up; over all the 150k–250k people of a month of the
/// demo file those lookups miss the cache, over one part's few thousand they hit it.
const PART_BITS: u32 = 6;

/// The scan's rows per part, per step; a person's rows all fall in one part, so the
/// parts are walked one after another with a small table of people each.
struct Parts {
    rows: Vec<Vec<StepRows>>,
    /// Step-1 rows with their breakdown value, kept only with a breakdown.
    entering: Vec<Vec<Entering>>,
}

impl Parts {
    fn new(steps: usize) -> Parts {
        Parts {
            rows: vec![vec![Vec::new(); steps]; 1 << PART_BITS],
            entering: vec![Vec::new(); 1 << PART_BITS],
        }
    }

    fn part(v: u64) -> usize {
        (v >> (64 - PART_BITS)) as usize
    }

    /// The row of a person at a time, in every step whose bit `m` has.
    fn push(&mut self, v: u64, t: i64, mut m: u32) {
        let part = &mut self.rows[Self::part(v)];
        while m != 0 {
            let k = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(rows) = part.get_mut(k) {
                rows.push((v, t));
            }
        }
    }

    fn enter(&mut self, v: u64, t: i64, value: Option<String>) {
        self.entering[Self::part(v)].push((v, t, value));
    }
}

/// The person's entry (first step-1 time) and, once reached, each later step's time.
struct Path {
    t1: i64,
    /// The time of the last step reached so far, and how many steps that is.
    tk: i64,
    /// The earliest time of the step being walked that qualifies, if any yet.
    next: i64,
    reached: u32,
    /// The breakdown group of the person's entering value (see `walk`), 0 without one.
    group: u32,
}

pub fn run_sync(conn: &Connection, spec: &FunnelSpec) -> Result<Funnel, StoreError> {
    let (text, params) = sql(spec);
    let mut stmt = conn.prepare(&text)?;
    let bad =
        |what: &str| StoreError::Internal(format!("funnel read: {what} has an unexpected type"));
    let mut parts = Parts::new(spec.steps.len());
    // Gathered, not streamed (`stream_arrow`): a streamed result pumps DuckDB's workers
    // from this thread chunk by chunk, which cost about 1.5x the CPU and wall time here.
    for batch in stmt.query_arrow(duckdb::params_from_iter(params))? {
        let v = batch
            .column(0)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| bad("v"))?;
        let t = batch
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("t"))?;
        let m = batch
            .column(2)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("m"))?;
        let b = spec.breakdown.as_ref().map(|_| batch.column(3));
        // None of the three is ever null: a hash, an event time in the range, a mask.
        let rows = v
            .values()
            .iter()
            .zip(t.values().iter())
            .zip(m.values().iter());
        for (r, ((&v, &t), &m)) in rows.enumerate() {
            if let Some(b) = b {
                if m & 1 != 0 {
                    let value = b
                        .is_valid(r)
                        .then(|| super::rollup_days::text_at(b.as_ref(), r));
                    parts.enter(v, t, value);
                }
            }
            parts.push(v, t, m);
        }
    }
    Ok(walk(spec, &parts))
}

/// A funnel's scanned rows as the walk takes them, from an engine that reads them row by
/// row (ClickHouse, whose filters and breakdown are applied in Rust: `row_mask`).
pub struct Scan {
    parts: Parts,
    breakdown: bool,
}

impl Scan {
    pub fn new(spec: &FunnelSpec) -> Scan {
        Scan {
            parts: Parts::new(spec.steps.len()),
            breakdown: spec.breakdown.is_some(),
        }
    }

    /// A row of person `v` at time `t` meeting the conditions of the steps whose bits `m`
    /// has (bit k for step k + 1), with its breakdown `value` when it meets step 1's.
    pub fn row(&mut self, v: u64, t: i64, m: u32, value: Option<String>) {
        if self.breakdown && m & 1 != 0 {
            self.parts.enter(v, t, value);
        }
        self.parts.push(v, t, m);
    }

    pub fn finish(self, spec: &FunnelSpec) -> Funnel {
        walk(spec, &self.parts)
    }
}

/// What `sql`'s `m` and `b` are for a row named `name` (its event, or its step in
/// `conversions`) with `properties`, computed in Rust with DuckDB's reading of the
/// properties (`props`): the steps it meets and, when it meets step 1, the breakdown value.
pub fn row_mask(spec: &FunnelSpec, name: &str, properties: Option<&str>) -> (u32, Option<String>) {
    let mut m = 0u32;
    for (k, step) in spec.steps.iter().enumerate() {
        if step.event == name && passes(&step.filters, properties) {
            m |= 1 << k;
        }
    }
    let value = match &spec.breakdown {
        Some(key) if m & 1 != 0 => super::props::text(properties, key),
        _ => None,
    };
    (m, value)
}

/// People per step and gaps between steps, per breakdown group: group 0 is everyone,
/// group 1 + i the people whose entering value is `values[i]`.
struct Tally {
    values: Vec<Option<String>>,
    users: Vec<Vec<u64>>,
    /// Per group and step, each person's gap from the previous step (for the medians).
    gaps: Vec<Vec<Vec<i64>>>,
}

impl Tally {
    fn new(steps: usize) -> Tally {
        Tally {
            values: Vec::new(),
            users: vec![vec![0; steps]],
            gaps: vec![vec![Vec::new(); steps]],
        }
    }

    /// The group of a breakdown value, added when new.
    fn group(&mut self, index: &mut HashMap<Option<String>, u32>, value: Option<String>) -> u32 {
        if let Some(&g) = index.get(&value) {
            return g;
        }
        let steps = self.users[0].len();
        self.values.push(value.clone());
        self.users.push(vec![0; steps]);
        self.gaps.push(vec![Vec::new(); steps]);
        let g = self.values.len() as u32;
        index.insert(value, g);
        g
    }

    fn add(&mut self, other: Tally) {
        let mut index: HashMap<Option<String>, u32> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i as u32 + 1))
            .collect();
        let values = std::iter::once(None).chain(other.values.into_iter().map(Some));
        for ((value, users), gaps) in values.zip(other.users).zip(other.gaps) {
            let g = match value {
                None => 0,
                Some(value) => self.group(&mut index, value),
            } as usize;
            self.users[g]
                .iter_mut()
                .zip(users)
                .for_each(|(u, o)| *u += o);
            self.gaps[g]
                .iter_mut()
                .zip(gaps)
                .for_each(|(d, o)| d.extend(o));
        }
    }
}

/// The walk of `walk_parts`, its parts split between two threads: by then DuckDB's two
/// workers are idle, and each part's people are its own.
fn walk(spec: &FunnelSpec, parts: &Parts) -> Funnel {
    let half = parts.rows.len() / 2;
    let (mut tally, other) = std::thread::scope(|s| {
        let other = s.spawn(|| walk_parts(spec, &parts.rows[half..], &parts.entering[half..]));
        let tally = walk_parts(spec, &parts.rows[..half], &parts.entering[..half]);
        (tally, other.join())
    });
    tally.add(other.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
    funnel_of(spec, tally)
}

/// Rates, medians and the breakdown rows of the people counted.
fn funnel_of(spec: &FunnelSpec, tally: Tally) -> Funnel {
    let Tally {
        values,
        users,
        mut gaps,
    } = tally;
    let medians: Vec<Vec<Option<f64>>> = gaps
        .iter_mut()
        .map(|per_step| {
            per_step
                .iter_mut()
                // Event times are whole milliseconds plus a place in a request in the
                // microsecond digits: the median is told to the millisecond.
                .map(|d| median(d).map(|us| (us / 1e3).round() / 1e3))
                .collect()
        })
        .collect();
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

/// The definition, step by step: the entry is each person's earliest step-1 time; step k
/// is their earliest step-k time strictly after step k-1's and at most the window after
/// the entry. Part by part, a pass over each step's rows with one lookup per row.
fn walk_parts(spec: &FunnelSpec, rows: &[Vec<StepRows>], entering: &[Vec<Entering>]) -> Tally {
    let n = spec.steps.len();
    type Fx = BuildHasherDefault<super::rollup_days::Fx>;
    let mut people: HashMap<u64, Path, Fx> = HashMap::default();
    let mut entry_value: HashMap<u64, Option<String>, Fx> = HashMap::default();
    let mut tally = Tally::new(n);
    let mut index: HashMap<Option<String>, u32> = HashMap::new();
    for (rows, entering) in rows.iter().zip(entering) {
        people.clear();
        for &(v, t) in &rows[0] {
            people
                .entry(v)
                .and_modify(|p| p.t1 = p.t1.min(t))
                .or_insert(Path {
                    t1: t,
                    tk: t,
                    next: i64::MAX,
                    reached: 1,
                    group: 0,
                });
        }
        for p in people.values_mut() {
            p.tk = p.t1;
        }
        if spec.breakdown.is_some() {
            // The breakdown value of each person's entering event(s): the least non-null one.
            entry_value.clear();
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
            for (v, p) in people.iter_mut() {
                let b = entry_value.get(v).cloned().flatten();
                p.group = tally.group(&mut index, b);
            }
        }
        for (k, step_rows) in rows.iter().enumerate().skip(1) {
            let step = k as u32;
            for &(v, t) in step_rows {
                let Some(p) = people.get_mut(&v) else {
                    continue;
                };
                if p.reached == step && t > p.tk && t <= p.t1 + spec.window_us && t < p.next {
                    p.next = t;
                }
            }
            for p in people.values_mut() {
                if p.reached == step && p.next != i64::MAX {
                    let gap = p.next - p.tk;
                    tally.gaps[0][k].push(gap);
                    if p.group != 0 {
                        tally.gaps[p.group as usize][k].push(gap);
                    }
                    p.tk = p.next;
                    p.next = i64::MAX;
                    p.reached = step + 1;
                }
            }
        }
        for p in people.values() {
            let reached = p.reached as usize;
            tally.users[0][..reached].iter_mut().for_each(|u| *u += 1);
            if p.group != 0 {
                tally.users[p.group as usize][..reached]
                    .iter_mut()
                    .for_each(|u| *u += 1);
            }
        }
    }
    tally
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

/// Whether a row's properties pass every filter of a step, as the DuckDB funnel's
/// `json_extract_string(..) = ?` and `IS DISTINCT FROM ?` decide it.
fn passes(filters: &[Filter], properties: Option<&str>) -> bool {
    filters.iter().all(|f| {
        let got = super::props::text(properties, &f.property);
        match f.op {
            Op::Eq => got.as_deref() == Some(f.value.as_str()),
            Op::Neq => got.as_deref() != Some(f.value.as_str()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Split into parts and walked by two threads, the rows give what one table of
    /// everyone gives: the same people per step and breakdown value, the same medians.
    #[test]
    fn parts_and_threads_change_nothing() {
        let steps: Vec<Step> = ["a", "b", "c"]
            .iter()
            .map(|e| Step {
                event: e.to_string(),
                filters: Vec::new(),
            })
            .collect();
        let spec = FunnelSpec {
            source: Source::Events,
            steps,
            window_us: 50,
            from_us: 0,
            to_us: 1_000,
            breakdown: Some("plan".into()),
        };
        let plans = [None, Some("free"), Some("pro"), Some("team")];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let people: Vec<u64> = (0..2_000).map(|_| rng.next()).collect();
        let mut parts = Parts::new(3);
        let mut all: Vec<StepRows> = vec![Vec::new(); 3];
        let mut entering = Vec::new();
        for _ in 0..20_000 {
            let v = people[(rng.next() % people.len() as u64) as usize];
            // Few distinct times, so ties between steps and at the window's edge occur.
            let t = (rng.next() % 200) as i64;
            let m = (rng.next() % 8) as u32;
            if m & 1 != 0 {
                let plan = plans[(rng.next() % 4) as usize].map(str::to_string);
                parts.enter(v, t, plan.clone());
                entering.push((v, t, plan));
            }
            parts.push(v, t, m);
            for (k, rows) in all.iter_mut().enumerate() {
                if m & (1 << k) != 0 {
                    rows.push((v, t));
                }
            }
        }
        let got = walk(&spec, &parts);
        let want = funnel_of(&spec, walk_parts(&spec, &[all], &[entering]));
        assert_eq!(got, want);
        assert!(got.steps[2].users > 0 && got.steps[2].users < got.steps[0].users);
        assert_eq!(got.breakdowns.len(), plans.len());
        let spread: std::collections::HashSet<usize> =
            people.iter().map(|&v| Parts::part(v)).collect();
        assert_eq!(spread.len(), 1 << PART_BITS);
    }
}
