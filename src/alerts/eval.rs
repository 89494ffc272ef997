//! The evaluation round: every enabled rule's measure, batched into one query per distinct
//! measure/filter/window, judged, and each series stepped through its states
//! (inactive -> pending -> firing -> resolved, or no data), as Prometheus rules do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::anomaly;
use super::measures::{self, Key, Stats};
use super::rules::{Condition, Rule};
use super::series::{Series, State};
use super::{history, notify, reads, Engine};
use crate::store::StoreError;

/// What one evaluation says about a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    True,
    False,
    NoData,
}

/// Timing of the last round, for the API and the benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoundInfo {
    pub at: Option<DateTime<Utc>>,
    pub rules: usize,
    pub queries: usize,
    pub series: usize,
    pub millis: f64,
    pub error: Option<String>,
}

/// The state machine, alone so it can be tested without a clock or a store.
pub fn step(
    s: &mut Series,
    verdict: Verdict,
    now: DateTime<Utc>,
    for_secs: u64,
    keep_secs: u64,
) -> Option<(State, State)> {
    let before = s.state;
    let since = |t: Option<DateTime<Utc>>| t.map_or(0, |t| (now - t).num_seconds().max(0) as u64);
    match verdict {
        Verdict::True => {
            s.last_true = Some(now);
            match s.state {
                State::Firing => {}
                State::Pending => {
                    if since(s.active_since) >= for_secs {
                        s.state = State::Firing;
                        s.firing_since = Some(now);
                    }
                }
                _ => {
                    s.active_since = Some(now);
                    s.resolved_at = None;
                    if for_secs == 0 {
                        s.state = State::Firing;
                        s.firing_since = Some(now);
                    } else {
                        s.state = State::Pending;
                    }
                }
            }
        }
        Verdict::False | Verdict::NoData => {
            let kept = s.state == State::Firing
                && keep_secs > 0
                && verdict == Verdict::False
                && since(s.last_true) < keep_secs;
            if !kept {
                s.state = match (s.state, verdict) {
                    (State::Firing, _) => {
                        s.resolved_at = Some(now);
                        State::Resolved
                    }
                    (State::Resolved, Verdict::False) => State::Resolved,
                    (_, Verdict::NoData) => State::NoData,
                    _ => State::Inactive,
                };
                if s.state != State::Resolved {
                    s.active_since = None;
                }
            }
        }
    }
    (before != s.state).then_some((before, s.state))
}

fn key(rule: &Rule, now_us: i64, back_us: i64) -> Key {
    let to = now_us - back_us;
    Key {
        measure: rule.spec.measure,
        filters: rule.spec.filters.clone(),
        group_by: rule.spec.group_by,
        from_us: to - rule.spec.window.0 as i64 * 1_000_000,
        to_us: to,
        bucket_us: None,
    }
}

/// A series' labels: the rule's name, severity and measure, its split label, its filters
/// and its own labels.
pub fn labels(rule: &Rule, group: Option<&str>) -> BTreeMap<String, String> {
    let mut l = rule.spec.labels.clone();
    l.insert("alertname".into(), rule.spec.name.clone());
    l.insert("severity".into(), rule.spec.severity.as_str().into());
    l.insert("measure".into(), rule.spec.measure.info().id.into());
    l.insert("rule_id".into(), rule.id.clone());
    for (d, v) in rule.spec.filters.iter() {
        l.insert(d.name().into(), v.into());
    }
    if let (Some(d), Some(g)) = (rule.spec.group_by, group) {
        l.insert(d.name().into(), g.into());
    }
    l
}

impl Engine {
    /// One round: measure, judge, step, persist, and queue the notifications due.
    pub async fn round(self: &Arc<Self>, now: DateTime<Utc>) -> Result<RoundInfo, StoreError> {
        let started = Instant::now();
        // Microseconds, as DuckDB stores them, so a restored state reads the same.
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let rules: Vec<Rule> = self
            .rules()
            .into_iter()
            .filter(|r| r.spec.enabled)
            .collect();
        let now_us = now.timestamp_micros();
        let hour = now_us / 3_600_000_000;

        let mut keys = Vec::new();
        let mut need_baseline = Vec::new();
        {
            let cache = self.baselines.lock();
            for r in &rules {
                keys.push(key(r, now_us, 0));
                match r.spec.condition {
                    Condition::Threshold => {}
                    Condition::Decline => keys.push(key(r, now_us, anomaly::WEEK_US)),
                    Condition::Anomaly => {
                        if !cache.contains_key(&(r.id.clone(), hour)) {
                            let w = r.spec.window.0 as i64 * 1_000_000;
                            for (from, to) in anomaly::baseline_windows(now_us, w) {
                                let mut k = key(r, to, 0);
                                k.from_us = from;
                                keys.push(k);
                            }
                            need_baseline.push(r.id.clone());
                        }
                    }
                }
            }
        }
        keys.sort_by_key(|k| (k.measure, k.from_us, k.to_us));
        keys.dedup();
        let queries = keys.len();
        let slow = self.slow_ms;
        let readings = self.readings();
        let results = Arc::new(reads::measure(&self.store, keys, slow, readings).await?);

        // Baselines, once an hour per anomaly rule.
        if !need_baseline.is_empty() {
            let mut cache = self.baselines.lock();
            cache.retain(|(_, h), _| *h == hour);
            for r in rules.iter().filter(|r| need_baseline.contains(&r.id)) {
                let w = r.spec.window.0 as i64 * 1_000_000;
                let mut per_group: HashMap<Option<String>, Vec<f64>> = HashMap::new();
                for (from, to) in anomaly::baseline_windows(now_us, w) {
                    let mut k = key(r, to, 0);
                    k.from_us = from;
                    for s in results.get(&k).into_iter().flatten() {
                        if let Some(v) = s.get(r.agg()) {
                            per_group.entry(s.group.clone()).or_default().push(v);
                        }
                    }
                }
                let sens = r.spec.sensitivity.unwrap_or(anomaly::DEFAULT_SENSITIVITY);
                let bands = per_group
                    .into_iter()
                    .filter_map(|(g, v)| anomaly::band(&v, sens).map(|b| (g, b)))
                    .collect();
                cache.insert((r.id.clone(), hour), bands);
            }
        }

        let mut transitions = Vec::new();
        let mut changed = Vec::new();
        let series_count;
        {
            let bands = self.baselines.lock();
            let mut all = self.series.lock();
            for r in &rules {
                let min = r
                    .spec
                    .min_samples
                    .map_or(self.config.alerts.min_samples, |n| n.0)
                    .max(1) as f64;
                let for_secs = r.spec.for_.unwrap_or(self.config.alerts.default_for).0;
                let keep = r.spec.keep_firing_for.0;
                let cur: HashMap<Option<String>, &Stats> = results
                    .get(&key(r, now_us, 0))
                    .into_iter()
                    .flatten()
                    .map(|s| (s.group.clone(), s))
                    .collect();
                let prev: HashMap<Option<String>, &Stats> = results
                    .get(&key(r, now_us, anomaly::WEEK_US))
                    .into_iter()
                    .flatten()
                    .map(|s| (s.group.clone(), s))
                    .collect();
                let rule_bands = bands.get(&(r.id.clone(), hour));
                // Every group seen now, a week ago (declines) or before (to resolve it).
                let mut groups: Vec<Option<String>> = cur.keys().cloned().collect();
                if r.spec.condition == Condition::Decline {
                    groups.extend(prev.keys().cloned());
                }
                if r.spec.group_by.is_none() {
                    groups.push(None);
                }
                for ((rid, g), _) in all.range((r.id.clone(), String::new())..) {
                    if rid != &r.id {
                        break;
                    }
                    if r.spec.group_by.is_some() {
                        groups.push(Some(g.clone()));
                    }
                }
                groups.sort();
                groups.dedup();
                for g in groups {
                    let series_name = g.clone().unwrap_or_default();
                    let stats = cur.get(&g).copied();
                    let counts = !r.spec.measure.needs_samples();
                    let (n, value) = match stats {
                        Some(s) => (s.n, s.get(r.agg())),
                        None if counts => (0.0, Some(0.0)),
                        None => (0.0, None),
                    };
                    let enough = counts || n >= min;
                    let mut reference = None;
                    let mut band = None;
                    let verdict = match (r.spec.condition, value) {
                        (_, None) => Verdict::NoData,
                        _ if !enough => Verdict::NoData,
                        (Condition::Threshold, Some(v)) => {
                            if r.spec.op.holds(v, r.spec.threshold) {
                                Verdict::True
                            } else {
                                Verdict::False
                            }
                        }
                        (Condition::Decline, Some(v)) => {
                            let p = prev.get(&g).copied();
                            let p_n = p.map_or(0.0, |p| p.n);
                            reference = p.and_then(|p| p.get(r.agg()));
                            match reference {
                                Some(p) if p_n >= min && p > 0.0 => {
                                    if (p - v) / p * 100.0 > r.spec.threshold {
                                        Verdict::True
                                    } else {
                                        Verdict::False
                                    }
                                }
                                _ => Verdict::NoData,
                            }
                        }
                        (Condition::Anomaly, Some(v)) => {
                            band = rule_bands.and_then(|b| b.get(&g)).copied();
                            match band {
                                None => Verdict::NoData,
                                Some(b) => {
                                    let out = if r.spec.op.upward() {
                                        v > b.upper
                                    } else {
                                        v < b.lower
                                    };
                                    if out {
                                        Verdict::True
                                    } else {
                                        Verdict::False
                                    }
                                }
                            }
                        }
                    };
                    let entry = all
                        .entry((r.id.clone(), series_name.clone()))
                        .or_insert_with(|| {
                            let labels = labels(r, g.as_deref());
                            Series::new(r.id.clone(), series_name.clone(), labels, now)
                        });
                    entry.value = value;
                    entry.samples = n;
                    entry.reference = reference;
                    entry.band = band;
                    entry.evaluated_at = now;
                    if let Some((from, to)) = step(entry, verdict, now, for_secs, keep) {
                        transitions.push((entry.clone(), from, to));
                        changed.push(entry.clone());
                    } else if entry.state == State::Firing && keep > 0 && verdict == Verdict::True {
                        // keep_firing_for counts from the last true evaluation: keep it.
                        changed.push(entry.clone());
                    }
                }
            }
            // Rules deleted or disabled: their series go quietly.
            let live: std::collections::HashSet<&str> =
                rules.iter().map(|r| r.id.as_str()).collect();
            all.retain(|(rid, _), _| live.contains(rid.as_str()));
            series_count = all.len();
        }

        let _w = self.writes.lock().await;
        history::save(&self.store, now, changed, transitions).await?;
        notify::plan(self, now).await?;
        drop(_w);
        self.wake_outbox.notify_one();

        let info = RoundInfo {
            at: Some(now),
            rules: rules.len(),
            queries,
            series: series_count,
            millis: started.elapsed().as_secs_f64() * 1000.0,
            error: None,
        };
        *self.last_round.lock() = info.clone();
        Ok(info)
    }

    /// This process's gauges, read now.
    fn readings(&self) -> measures::Readings {
        measures::Readings {
            disk_free_percent: self
                .store
                .disk_usage()
                .filter(|(_, total)| *total > 0)
                .map(|(free, total)| 100.0 * free as f64 / total as f64),
            disk_full: self.store.disk_full(),
        }
    }

    /// The measure over the last day in buckets, for the rule editor's preview.
    pub(super) async fn preview(
        &self,
        rule: &Rule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Stats>, StoreError> {
        let now_us = now.timestamp_micros();
        let bucket = (rule.spec.window.0 as i64).clamp(300, 3600) * 1_000_000;
        let mut k = key(rule, now_us, 0);
        k.from_us = (now_us - 86_400_000_000) / bucket * bucket;
        k.bucket_us = Some(bucket);
        let slow = self.slow_ms;
        let keys = vec![k.clone()];
        let readings = self.readings();
        let mut res = reads::measure(&self.store, keys, slow, readings).await?;
        let mut rows = res.remove(&k).unwrap_or_default();
        rows.sort_by(|a, b| (a.bucket_us, &a.group).cmp(&(b.bucket_us, &b.group)));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series::new("r".into(), String::new(), BTreeMap::new(), Utc::now())
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut s = series();
        assert_eq!(
            step(&mut s, Verdict::True, at(0), 60, 0),
            Some((State::Inactive, State::Pending))
        );
        assert_eq!(step(&mut s, Verdict::True, at(30), 60, 0), None);
        assert_eq!(
            step(&mut s, Verdict::True, at(60), 60, 0),
            Some((State::Pending, State::Firing))
        );
        assert_eq!(
            step(&mut s, Verdict::False, at(90), 60, 0),
            Some((State::Firing, State::Resolved))
        );
        assert_eq!(s.resolved_at, Some(at(90)));
        assert_eq!(
            step(&mut s, Verdict::NoData, at(120), 60, 0),
            Some((State::Resolved, State::NoData))
        );
    }

    #[test]
    fn pending_that_clears_never_fires() {
        let t0 = Utc::now();
        let mut s = series();
        step(&mut s, Verdict::True, t0, 60, 0);
        assert_eq!(
            step(&mut s, Verdict::False, t0, 60, 0),
            Some((State::Pending, State::Inactive))
        );
    }

    #[test]
    fn keep_firing_for_holds_through_a_dip() {
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut s = series();
        step(&mut s, Verdict::True, at(0), 0, 120);
        assert_eq!(s.state, State::Firing);
        assert_eq!(step(&mut s, Verdict::False, at(60), 0, 120), None);
        assert_eq!(
            step(&mut s, Verdict::False, at(121), 0, 120),
            Some((State::Firing, State::Resolved))
        );
    }
}
