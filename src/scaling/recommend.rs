//! The current recommendation: the fleet's fresh samples and the stabilisation window's
//! history through the HPA algorithm; and the task that records one every interval (on
//! ClickHouse, one node a period).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::hpa::{self, Action, InstanceNow, MetricInput, Urgency};
use super::query::{seconds_us, Fleet};
use super::reads::{self, FleetNow};
use crate::config::ScalabilityConfig;
use crate::store::clickhouse::lease;
use crate::store::{Batch, RecommendationRow, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    /// No instance reported within `scalability.stale_after`: nothing to decide from.
    NotEnoughData,
    /// `scalability.enabled = false`.
    Disabled,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub state: State,
    pub fleet: Fleet,
    pub computed_at: String,
    /// Instances that reported within `stale_after`.
    pub current_instances: u32,
    /// `None` unless `state` is `ok`.
    pub desired_instances: Option<u32>,
    pub raw_desired_instances: Option<u32>,
    pub action: Option<Action>,
    pub metric: Option<&'static str>,
    pub urgency: Option<Urgency>,
    pub reason: String,
    pub inputs: Vec<MetricInput>,
    pub instances: Vec<InstanceNow>,
    pub stabilization: Stabilization,
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stabilization {
    pub window_seconds: u64,
    /// True when a scale-down was held back by a higher recent recommendation.
    pub held: bool,
    pub window_highest: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub min_instances: u32,
    pub max_instances: u32,
    pub target_cpu: f64,
    pub target_memory: f64,
    pub scale_up_threshold: f64,
    pub scale_down_threshold: f64,
    pub tolerance: f64,
    pub stale_after_seconds: u64,
}

impl Recommendation {
    /// Differs from what runs now.
    pub fn changes(&self) -> bool {
        self.desired_instances
            .is_some_and(|d| d != self.current_instances)
    }
}

pub async fn current(store: &Store, cfg: &ScalabilityConfig) -> Result<Recommendation, StoreError> {
    let now = Utc::now();
    let now_us = now.timestamp_micros();
    let since = now_us.saturating_sub(seconds_us(cfg.stabilization_window));
    let fleet = reads::fleet_now(store, now_us, seconds_us(cfg.stale_after), since).await?;
    Ok(assemble(cfg, now, fleet))
}

/// The recommendation at `now` from what `reads::fleet_now` read, on either engine.
pub fn assemble(cfg: &ScalabilityConfig, now: DateTime<Utc>, read: FleetNow) -> Recommendation {
    let FleetNow {
        fleet,
        instances,
        recent,
    } = read;
    let limits = Limits {
        min_instances: cfg.min_instances,
        max_instances: cfg.max_instances,
        target_cpu: cfg.target_cpu,
        target_memory: cfg.target_memory,
        scale_up_threshold: cfg.scale_up_threshold,
        scale_down_threshold: cfg.scale_down_threshold,
        tolerance: cfg.tolerance,
        stale_after_seconds: cfg.stale_after,
    };
    let mut rec = Recommendation {
        state: State::Ok,
        fleet,
        computed_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        current_instances: u32::try_from(instances.len()).unwrap_or(u32::MAX),
        desired_instances: None,
        raw_desired_instances: None,
        action: None,
        metric: None,
        urgency: None,
        reason: String::new(),
        inputs: Vec::new(),
        instances: Vec::new(),
        stabilization: Stabilization {
            window_seconds: cfg.stabilization_window,
            held: false,
            window_highest: None,
        },
        limits,
    };
    if !cfg.enabled {
        rec.state = State::Disabled;
        rec.reason = "Recommendations are off (scalability.enabled = false).".into();
        rec.instances = instances;
        return rec;
    }
    if instances.is_empty() {
        rec.state = State::NotEnoughData;
        rec.reason = format!(
            "Not enough data: no instance reported in the last {} s. Apps report with POST \
             /api/analytics/system; this host is sampled every scalability.sample_interval seconds.",
            cfg.stale_after
        );
        return rec;
    }
    let d = hpa::decide(&instances, cfg, &recent);
    rec.desired_instances = Some(d.desired_instances);
    rec.raw_desired_instances = Some(d.raw_desired_instances);
    rec.action = Some(d.action);
    rec.metric = d.metric.map(|m| m.name());
    rec.urgency = Some(d.urgency);
    rec.reason = d.reason;
    rec.inputs = d.inputs;
    rec.stabilization.held = d.stabilized;
    rec.stabilization.window_highest = Some(d.window_highest);
    rec.instances = instances;
    rec
}

/// Records the current recommendation once per period of `every` (the periods count from
/// the epoch). On ClickHouse the nodes share the history, so only the node whose claim on
/// the period came first records it (`lease`: every node claims, one runs); `last` is this
/// node's last period, so a late tick never claims a period twice.
pub async fn record_once(
    store: &Store,
    cfg: &ScalabilityConfig,
    every: Duration,
    last: &AtomicI64,
) -> Result<(), StoreError> {
    if let Some(ch) = store.clickhouse() {
        let every_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX).max(1);
        let period = Utc::now().timestamp_micros().div_euclid(every_us);
        if last.swap(period, Ordering::Relaxed) == period {
            return Ok(());
        }
        let won = lease::claim(ch, &format!("scaling:{period}"))
            .await
            .map_err(StoreError::ClickHouse)?;
        if !won {
            return Ok(());
        }
    }
    record(store, cfg).await
}

/// Records the current recommendation (when there is one) for the window and the history.
async fn record(store: &Store, cfg: &ScalabilityConfig) -> Result<(), StoreError> {
    let rec = current(store, cfg).await?;
    let (Some(desired), Some(raw)) = (rec.desired_instances, rec.raw_desired_instances) else {
        return Ok(());
    };
    let input = rec
        .inputs
        .iter()
        .find(|i| Some(i.metric.name()) == rec.metric);
    let row = RecommendationRow {
        created_at: Utc::now().timestamp_micros(),
        fleet: rec.fleet.name(),
        current_instances: i32::try_from(rec.current_instances).unwrap_or(i32::MAX),
        raw_desired: i32::try_from(raw).unwrap_or(i32::MAX),
        desired_instances: i32::try_from(desired).unwrap_or(i32::MAX),
        metric: rec.metric,
        value: input.map(|i| i.value),
        target: input.map(|i| i.target),
        urgency: rec.urgency.map_or("normal", Urgency::name),
        reason: rec.reason,
    };
    store.append(Batch::Recommendations(vec![row])).await
}
