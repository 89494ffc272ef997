//! Property tests: every growth query against an independent plain-Rust computation over
//! the same generated events (random order, duplicate timestamps, skipped steps, events
//! outside the window and the range, day edges in several UTC offsets).

// The references index cohorts and periods the way their definitions read.
#![allow(clippy::needless_range_loop)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use growth_stack::growth::active::{self, ActiveSpec};
use growth_stack::growth::adoption::{self, AdoptionSpec};
use growth_stack::growth::funnel::{self, Filter, FunnelSpec, Op, Source, Step};
use growth_stack::growth::retention::{self, RetentionSpec};
use growth_stack::growth::time::{Interval, DAY_US, MINUTE_US};
use growth_stack::store::{Batch, EventRow, Store};
use proptest::prelude::*;

/// 2026-03-02T00:00:00Z, a Monday.
const BASE: i64 = 1_772_409_600_000_000;
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
struct Ev {
    person: u8,
    name: usize,
    t: i64,
    plan: Option<&'static str>,
    feature: Option<&'static str>,
}

fn ev() -> impl Strategy<Value = Ev> {
    let t = (
        -3i64..12,
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            (0..24 * 60i64).prop_map(|m| m * MINUTE_US),
            (0..6i64).prop_map(|m| 12 * 60 * MINUTE_US + m * MINUTE_US),
        ],
    )
        .prop_map(|(d, j)| BASE + d * DAY_US + j);
    (
        0u8..6,
        0usize..4,
        t,
        prop_oneof![Just(None), Just(Some("x")), Just(Some("y"))],
        prop_oneof![
            Just(None),
            Just(None),
            Just(Some("search")),
            Just(Some("planner"))
        ],
    )
        .prop_map(|(person, name, t, plan, feature)| Ev {
            person,
            name,
            t,
            plan,
            feature,
        })
}

fn rows(evs: &[Ev]) -> Vec<EventRow> {
    evs.iter()
        .map(|e| EventRow {
            id: uuid::Uuid::new_v4(),
            user_id: Some(format!("user-{}", e.person)),
            visitor_id: Some(format!("user-{}", e.person)),
            event: NAMES[e.name].into(),
            properties: e.plan.map(|p| format!(r#"{{"plan":"{p}"}}"#)),
            feature: e.feature.map(str::to_string),
            timestamp: e.t / 1000,
            created_at: e.t,
            ..Default::default()
        })
        .collect()
}

/// A store on a temp dir holding `evs`; the dir lives as long as the store is used.
fn with_store<T>(evs: &[Ev], f: impl FnOnce(&Store, &tokio::runtime::Runtime) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::helpers::store_options(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Store::open(&dir.path().join("g.duckdb"), &opts).unwrap();
    if !evs.is_empty() {
        rt.block_on(store.append(Batch::Events(rows(evs)))).unwrap();
    }
    let out = f(&store, &rt);
    rt.block_on(store.close()).unwrap();
    out
}

/// `with_store` where the first `folded` events are folded into the active-days roll-up
/// and the rest (any day, late ones included) are still only in `user_events`.
fn with_partly_folded<T>(
    evs: &[Ev],
    folded: usize,
    f: impl FnOnce(&Store, &tokio::runtime::Runtime) -> T,
) -> T {
    let cut = folded.min(evs.len());
    with_store(&evs[..cut], |store, rt| {
        rt.block_on(growth_stack::growth::rollup::catch_up(store))
            .unwrap();
        if cut < evs.len() {
            rt.block_on(store.append(Batch::Events(rows(&evs[cut..]))))
                .unwrap();
        }
        f(store, rt)
    })
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    })
}

fn step_matches(step: &Step, e: &Ev) -> bool {
    NAMES[e.name] == step.event
        && step.filters.iter().all(|f| match f.op {
            Op::Eq => e.plan == Some(f.value.as_str()),
            Op::Neq => e.plan != Some(f.value.as_str()),
        })
}

/// (people per step, median microseconds from the previous step) of one group of people.
fn reference_funnel(spec: &FunnelSpec, evs: &[&Ev]) -> (Vec<u64>, Vec<Option<f64>>) {
    let n = spec.steps.len();
    let mut users = vec![0u64; n];
    let mut gaps: Vec<Vec<i64>> = vec![Vec::new(); n];
    let mut by_person: BTreeMap<u8, Vec<&Ev>> = BTreeMap::new();
    for e in evs {
        by_person.entry(e.person).or_default().push(e);
    }
    for (_, list) in by_person {
        let in_range = |e: &&&Ev| e.t >= spec.from_us && e.t < spec.to_us;
        let Some(t1) = list
            .iter()
            .filter(in_range)
            .filter(|e| step_matches(&spec.steps[0], e))
            .map(|e| e.t)
            .min()
        else {
            continue;
        };
        users[0] += 1;
        let mut prev = t1;
        for k in 1..n {
            let next = list
                .iter()
                .filter(in_range)
                .filter(|e| step_matches(&spec.steps[k], e))
                .map(|e| e.t)
                .filter(|t| *t > prev && *t <= t1 + spec.window_us)
                .min();
            let Some(tk) = next else { break };
            users[k] += 1;
            gaps[k].push(tk - prev);
            prev = tk;
        }
    }
    let medians = gaps
        .into_iter()
        .enumerate()
        .map(|(k, g)| if k == 0 { None } else { median(g) })
        .collect();
    (users, medians)
}

/// The breakdown value of a person: the plan of their entering event(s), least first.
fn entry_plan(spec: &FunnelSpec, evs: &[Ev], person: u8) -> Option<Option<&'static str>> {
    let entering: Vec<&Ev> = evs
        .iter()
        .filter(|e| e.person == person && e.t >= spec.from_us && e.t < spec.to_us)
        .filter(|e| step_matches(&spec.steps[0], e))
        .collect();
    let t1 = entering.iter().map(|e| e.t).min()?;
    Some(
        entering
            .iter()
            .filter(|e| e.t == t1)
            .filter_map(|e| e.plan)
            .min(),
    )
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() < 1e-6 * x.abs().max(1.0),
        _ => false,
    }
}

fn steps_strategy() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0usize..4,
            prop_oneof![
                Just(None),
                Just(Some((Op::Eq, "x"))),
                Just(Some((Op::Neq, "x"))),
            ],
        ),
        2..5,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(n, f)| Step {
                event: NAMES[n].into(),
                filters: f
                    .map(|(op, value)| Filter {
                        property: "plan".into(),
                        op,
                        value: value.into(),
                    })
                    .into_iter()
                    .collect(),
            })
            .collect()
    })
}

/// DAU, WAU and MAU per day of `got`, counted by hand from the events.
fn check_active(evs: &[Ev], spec: &ActiveSpec, got: &active::Active) -> Result<(), TestCaseError> {
    let day = |t: i64| Interval::Day.bucket(t, spec.offset_us);
    let (first, last) = (spec.first_day(), spec.last_day());
    let mut days: HashMap<u8, BTreeSet<i64>> = HashMap::new();
    for e in evs
        .iter()
        .filter(|e| e.t < spec.to_us && day(e.t) > first - 30)
    {
        days.entry(e.person).or_default().insert(day(e.t));
    }
    prop_assert_eq!(got.series.len() as i64, last - first + 1);
    for row in &got.series {
        let d = row.active.day;
        let count = |w: i64| {
            days.values()
                .filter(|s| s.range(d - w + 1..=d).next().is_some())
                .count() as u64
        };
        prop_assert_eq!(
            (row.active.dau, row.active.wau, row.active.mau),
            (count(1), count(7), count(30)),
            "day {}",
            d
        );
    }
    Ok(())
}

/// The cohort table of `got` against the definition, counted by hand from the events.
fn check_retention(
    evs: &[Ev],
    spec: &RetentionSpec,
    got: &retention::Retention,
) -> Result<(), TestCaseError> {
    // Reference: straight from the definition.
    let (from, to, off, interval) = (spec.from_us(), spec.to_us, spec.offset_us, spec.interval);
    let first = spec.first_bucket();
    let width = spec.periods as usize + 1;
    let mut sizes = vec![0u64; width];
    let mut kept = vec![vec![0u64; width]; width];
    for p in 0u8..6 {
        let mine: Vec<&Ev> = evs
            .iter()
            .filter(|e| e.person == p && e.t >= from && e.t < to)
            .collect();
        let Some(t0) = mine
            .iter()
            .filter(|e| {
                spec.start_event
                    .as_deref()
                    .is_none_or(|s| NAMES[e.name] == s)
            })
            .map(|e| e.t)
            .min()
        else {
            continue;
        };
        let b0 = interval.bucket(t0, off);
        let c = (b0 - first) as usize;
        sizes[c] += 1;
        for (k, slot) in kept[c].iter_mut().enumerate() {
            let hit = mine.iter().any(|e| {
                spec.return_event
                    .as_deref()
                    .is_none_or(|r| NAMES[e.name] == r)
                    && e.t >= t0
                    && interval.bucket(e.t, off) == b0 + k as i64
            });
            if hit {
                *slot += 1;
            }
        }
    }
    prop_assert_eq!(got.cohorts.len(), width);
    for (c, cohort) in got.cohorts.iter().enumerate() {
        prop_assert_eq!(cohort.size, sizes[c], "cohort {}", c);
        let observable = width - c;
        for k in 0..width {
            let want = (k < observable).then_some(kept[c][k]);
            prop_assert_eq!(cohort.retained[k], want, "cohort {} period {}", c, k);
        }
        prop_assert_eq!(
            cohort.start.clone(),
            chrono::DateTime::from_timestamp_micros(interval.start(first + c as i64, off))
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    for k in 0..width {
        let (mut n, mut d) = (0u64, 0u64);
        for c in 0..(width - k) {
            n += kept[c][k];
            d += sizes[c];
        }
        let want = (d > 0).then(|| n as f64 / d as f64);
        prop_assert!(
            close(got.retention[k], want),
            "period {}: {:?} vs {:?}",
            k,
            got.retention[k],
            want
        );
        prop_assert!(close(got.churn[k], want.map(|r| 1.0 - r)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn funnel_matches_reference(
        evs in prop::collection::vec(ev(), 0..80),
        steps in steps_strategy(),
        window_min in prop_oneof![Just(1i64), Just(60), Just(24 * 60), Just(3 * 24 * 60)],
        from_day in -2i64..3,
        span_days in 1i64..10,
        breakdown in any::<bool>(),
    ) {
        let spec = FunnelSpec {
            source: Source::Events,
            steps,
            window_us: window_min * MINUTE_US,
            from_us: BASE + from_day * DAY_US,
            to_us: BASE + (from_day + span_days) * DAY_US,
            breakdown: breakdown.then(|| "plan".to_string()),
        };
        let got = with_store(&evs, |store, rt| rt.block_on(funnel::run(store, spec.clone()))).unwrap();
        let all: Vec<&Ev> = evs.iter().collect();
        let (users, medians) = reference_funnel(&spec, &all);
        let got_users: Vec<u64> = got.steps.iter().map(|s| s.users).collect();
        prop_assert_eq!(&got_users, &users);
        for (k, s) in got.steps.iter().enumerate() {
            // Told to the millisecond (see `funnel::run_sync`).
            let want = medians[k].map(|us| (us / 1e3).round() / 1e3);
            prop_assert!(close(s.median_seconds_from_previous, want), "step {}: {:?} vs {:?}", k + 1, s.median_seconds_from_previous, want);
            if k > 0 {
                prop_assert_eq!(s.drop_off, users[k - 1] - users[k]);
            }
        }
        if breakdown {
            let mut groups: BTreeMap<Option<&str>, Vec<&Ev>> = BTreeMap::new();
            for p in 0u8..6 {
                if let Some(plan) = entry_plan(&spec, &evs, p) {
                    groups.entry(plan).or_default().extend(evs.iter().filter(|e| e.person == p));
                }
            }
            prop_assert_eq!(got.breakdowns.len(), groups.len());
            for row in &got.breakdowns {
                let members = groups.get(&row.value.as_deref()).cloned().unwrap_or_default();
                let (users, _) = reference_funnel(&spec, &members);
                let got_users: Vec<u64> = row.steps.iter().map(|s| s.users).collect();
                prop_assert_eq!(got_users, users, "breakdown {:?}", row.value);
            }
        }
    }

    #[test]
    fn retention_matches_reference(
        evs in prop::collection::vec(ev(), 0..80),
        start in prop_oneof![Just(None), (0usize..4).prop_map(Some)],
        ret in prop_oneof![Just(None), (0usize..4).prop_map(Some)],
        interval in prop_oneof![Just(Interval::Day), Just(Interval::Week), Just(Interval::Month)],
        periods in 1u32..5,
        to_day in 0i64..14,
        to_jitter in prop_oneof![Just(0i64), Just(1), (0..24 * 60i64).prop_map(|m| m * MINUTE_US)],
        offset_min in prop_oneof![Just(0i64), Just(120), Just(-300), Just(330), Just(-60)],
    ) {
        let spec = RetentionSpec {
            start_event: start.map(|i| NAMES[i].to_string()),
            return_event: ret.map(|i| NAMES[i].to_string()),
            interval,
            periods,
            to_us: BASE + to_day * DAY_US + to_jitter,
            offset_us: offset_min * MINUTE_US,
        };
        let got = with_store(&evs, |store, rt| rt.block_on(retention::run(store, spec.clone()))).unwrap();
        check_retention(&evs, &spec, &got)?;
    }

    /// The same through the roll-up of active days (any event starts and returns, UTC):
    /// some events folded into it, the rest still only in `user_events`.
    #[test]
    fn retention_over_the_rollup_matches_reference(
        evs in prop::collection::vec(ev(), 0..80),
        folded in 0usize..80,
        interval in prop_oneof![Just(Interval::Day), Just(Interval::Week), Just(Interval::Month)],
        periods in 1u32..5,
        to_day in 0i64..14,
        to_jitter in prop_oneof![Just(0i64), Just(1), (0..24 * 60i64).prop_map(|m| m * MINUTE_US)],
    ) {
        let spec = RetentionSpec {
            start_event: None,
            return_event: None,
            interval,
            periods,
            to_us: BASE + to_day * DAY_US + to_jitter,
            offset_us: 0,
        };
        let got = with_partly_folded(&evs, folded, |store, rt| {
            rt.block_on(retention::run(store, spec.clone()))
        }).unwrap();
        check_retention(&evs, &spec, &got)?;
    }

    #[test]
    fn active_users_match_reference(
        evs in prop::collection::vec(ev(), 0..80),
        from_day in -2i64..6,
        span in prop_oneof![Just(1i64), (1..10i64).prop_map(|d| d * DAY_US), (1..300i64).prop_map(|m| m * 60 * MINUTE_US)],
        offset_min in prop_oneof![Just(0i64), Just(120), Just(-300), Just(330)],
    ) {
        let spec = ActiveSpec {
            from_us: BASE + from_day * DAY_US + 7 * MINUTE_US,
            to_us: BASE + from_day * DAY_US + 7 * MINUTE_US + span,
            offset_us: offset_min * MINUTE_US,
        };
        let got = with_store(&evs, |store, rt| {
            rt.block_on(store.query(move |c| active::run_sync(c, &spec)))
        }).unwrap();
        check_active(&evs, &spec, &got)?;
    }

    /// The same through the roll-up of active days: some events folded into it, the rest
    /// (any day, late ones included) still only in `user_events`.
    #[test]
    fn active_users_over_the_rollup_match_reference(
        evs in prop::collection::vec(ev(), 0..80),
        folded in 0usize..80,
        from_day in -2i64..6,
        span in prop_oneof![Just(1i64), (1..10i64).prop_map(|d| d * DAY_US), (1..300i64).prop_map(|m| m * 60 * MINUTE_US)],
    ) {
        let spec = ActiveSpec {
            from_us: BASE + from_day * DAY_US + 7 * MINUTE_US,
            to_us: BASE + from_day * DAY_US + 7 * MINUTE_US + span,
            offset_us: 0,
        };
        let got = with_partly_folded(&evs, folded, |store, rt| {
            rt.block_on(store.query(move |c| active::run_sync(c, &spec)))
        }).unwrap();
        check_active(&evs, &spec, &got)?;
    }

    #[test]
    fn adoption_matches_reference(
        evs in prop::collection::vec(ev(), 0..80),
        from_day in -2i64..6,
        span_days in 1i64..9,
        interval in prop_oneof![Just(Interval::Day), Just(Interval::Week)],
        offset_min in prop_oneof![Just(0i64), Just(120), Just(-300)],
    ) {
        let spec = AdoptionSpec {
            from_us: BASE + from_day * DAY_US - 1,
            to_us: BASE + (from_day + span_days) * DAY_US,
            interval,
            offset_us: offset_min * MINUTE_US,
        };
        let got = with_store(&evs, |store, rt| {
            rt.block_on(store.query(move |c| adoption::run_sync(c, &spec)))
        }).unwrap();
        let inside: Vec<&Ev> = evs.iter().filter(|e| e.t >= spec.from_us && e.t < spec.to_us).collect();
        let people = |it: &mut dyn Iterator<Item = &&Ev>| it.map(|e| e.person).collect::<BTreeSet<_>>().len() as u64;
        prop_assert_eq!(got.active_users, people(&mut inside.iter()));
        let first = interval.bucket(spec.from_us, spec.offset_us);
        let features: BTreeSet<&str> = inside.iter().filter_map(|e| e.feature).collect();
        prop_assert_eq!(got.features.len(), features.len());
        for f in &got.features {
            let uses: Vec<&&Ev> = inside.iter().filter(|e| e.feature == Some(f.feature.as_str())).collect();
            prop_assert_eq!(f.events, uses.len() as u64);
            prop_assert_eq!(f.users, people(&mut uses.iter().copied()));
            for (i, share) in f.trend.iter().enumerate() {
                let b = first + i as i64;
                let in_b = |e: &&&Ev| interval.bucket(e.t, spec.offset_us) == b;
                let active = people(&mut inside.iter().filter(in_b));
                let used = people(&mut uses.iter().copied().filter(in_b));
                let want = if active == 0 { 0.0 } else { used as f64 / active as f64 };
                prop_assert!((share - want).abs() < 1e-9, "{} bucket {}: {} vs {}", f.feature, i, share, want);
            }
        }
    }
}
