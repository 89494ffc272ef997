//! Looking ahead: the fleet's hourly load forecast with its band and the instances a
//! predicted peak will need (set before it arrives), and this host's capacity: days until
//! the data disk is full at the current rate, memory headroom.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::forecast::{self, Fit, MIN_POINTS};
use super::query::{Fleet, HostCapacity};
use super::reads;
use crate::config::ScalabilityConfig;
use crate::store::{Store, StoreError};

const HOUR_US: i64 = 3_600_000_000;
/// History the forecast learns from.
const HISTORY_DAYS: i64 = 28;
/// Actual load returned next to the forecast, for the chart.
const SHOWN_HOURS: usize = 48;
/// History the disk growth rate is measured over.
const CAPACITY_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    /// Fewer than two days of hourly load: a seasonal forecast would be a guess.
    NotEnoughData,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub t: String,
    /// Fleet load in percent of one instance's CPU (3 instances at 50% = 150).
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Ahead {
    /// Instances the predicted peak needs at the CPU target (clamped to min/max).
    pub desired_instances: u32,
    /// The same for the top of the 95% band.
    pub safe_instances: u32,
    pub peak_at: String,
    pub peak_value: f64,
    pub peak_high: f64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Forecast {
    pub state: State,
    pub fleet: Fleet,
    pub method: &'static str,
    pub history_hours: usize,
    pub needs_hours: usize,
    pub horizon_hours: u32,
    pub target_cpu: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    /// The last hours of actual load, oldest first.
    pub actual: Vec<Point>,
    /// One point per hour ahead, with the 95% band.
    pub points: Vec<Point>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<Ahead>,
    pub capacity: Capacity,
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    #[serde(flatten)]
    pub host: HostCapacity,
    /// At the last `CAPACITY_DAYS` days' rate; `None` while free space is not shrinking.
    pub days_until_disk_full: Option<f64>,
    pub memory_headroom_percent: Option<f64>,
}

pub async fn forecast(
    store: &Store,
    cfg: &ScalabilityConfig,
    hours: Option<u32>,
) -> Result<Forecast, StoreError> {
    let now = Utc::now();
    let now_us = now.timestamp_micros();
    // Whole hours only: the current hour is still filling up.
    let to = now_us.div_euclid(HOUR_US) * HOUR_US;
    let from = to - HISTORY_DAYS * 24 * HOUR_US;
    let demand = reads::demand(store, from, to).await?;
    let host = reads::capacity(store, now_us, CAPACITY_DAYS).await?;
    Ok(assemble(cfg, hours, demand, host))
}

fn iso(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The forecast from what `reads` read on either engine: the hourly demand (its fleet,
/// first hour, values) and this host's capacity.
pub fn assemble(
    cfg: &ScalabilityConfig,
    hours: Option<u32>,
    demand: (Fleet, i64, Vec<f64>),
    host: HostCapacity,
) -> Forecast {
    let horizon = hours.unwrap_or(cfg.forecast_hours).max(1);
    let (fleet, mut first, mut ys) = demand;
    // Start at the first hour with data.
    let lead = ys.iter().position(|y| y.is_finite()).unwrap_or(ys.len());
    ys.drain(..lead);
    first += lead as i64 * HOUR_US;
    let known = ys.len();
    let actual = ys
        .iter()
        .enumerate()
        .skip(known.saturating_sub(SHOWN_HOURS))
        .filter(|(_, y)| y.is_finite())
        .map(|(i, y)| Point {
            t: iso(first + i as i64 * HOUR_US),
            value: *y,
            low: None,
            high: None,
        })
        .collect();
    let capacity = capacity(host);
    let mut out = Forecast {
        state: State::NotEnoughData,
        fleet,
        method: "additive Holt-Winters, daily season, hourly load, 95% band",
        history_hours: known,
        needs_hours: MIN_POINTS,
        horizon_hours: horizon,
        target_cpu: cfg.target_cpu,
        fit: None,
        actual,
        points: Vec::new(),
        ahead: None,
        capacity,
    };
    if forecast::fill_gaps(&mut ys).is_none() {
        return out;
    }
    let Some((fit, steps)) = forecast::forecast(&ys, horizon as usize) else {
        return out;
    };
    out.state = State::Ok;
    out.fit = Some(fit);
    let start = first + known as i64 * HOUR_US;
    out.points = steps
        .iter()
        .enumerate()
        .map(|(k, s)| Point {
            t: iso(start + k as i64 * HOUR_US),
            value: s.value.max(0.0),
            low: Some(s.low.max(0.0)),
            high: Some(s.high.max(0.0)),
        })
        .collect();
    let peak = out.points.iter().max_by(|x, y| x.value.total_cmp(&y.value));
    if let Some(p) = peak {
        let need = |load: f64| -> u32 {
            let n = ((load / cfg.target_cpu) - 1e-9).ceil().max(0.0) as u32;
            n.clamp(cfg.min_instances, cfg.max_instances.max(cfg.min_instances))
        };
        let high = p.high.unwrap_or(p.value);
        let desired = need(p.value);
        out.ahead = Some(Ahead {
            desired_instances: desired,
            safe_instances: need(high),
            peak_at: p.t.clone(),
            peak_value: p.value,
            peak_high: high,
            reason: format!(
                "The next {horizon} h peak at {} is forecast at {:.0}% of one instance (95% up to {:.0}%): \
                 {desired} instances keep CPU at or under the {:.0}% target; set them before the peak.",
                p.t, p.value, high, cfg.target_cpu
            ),
        });
    }
    out
}

fn capacity(host: HostCapacity) -> Capacity {
    let days_until_disk_full = match (host.disk_free, host.disk_free_change_per_day) {
        (Some(free), Some(rate)) if rate < 0.0 && host.samples >= 2 => Some(free as f64 / -rate),
        _ => None,
    };
    let memory_headroom_percent = match (host.memory_used, host.memory_limit) {
        (Some(used), Some(limit)) if limit > 0 => {
            Some(((limit - used) as f64 * 100.0 / limit as f64).max(0.0))
        }
        _ => None,
    };
    Capacity {
        host,
        days_until_disk_full,
        memory_headroom_percent,
    }
}
