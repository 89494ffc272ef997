//! The Kubernetes Horizontal Pod Autoscaler's algorithm as a pure function: per metric
//! `ceil(current * value / target)` outside the tolerance, the largest over metrics,
//! clamped to [min, max], and a scale-down held to the highest recommendation of the
//! stabilisation window. The guide's thresholds say how urgent the answer is. Every
//! number it uses is a setting of `config.scalability` (`[scalability]`).

use serde::Serialize;

use crate::config::ScalabilityConfig;

/// The latest fresh sample of one running instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceNow {
    pub instance: String,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub requests_per_second: Option<f64>,
    pub p95_latency: Option<f64>,
    pub connections: Option<i32>,
    /// Seconds since its latest sample.
    pub age_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Cpu,
    Memory,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
        }
    }

    fn of(self, i: &InstanceNow) -> Option<f64> {
        match self {
            Metric::Cpu => i.cpu,
            Metric::Memory => i.memory,
        }
    }
}

/// What one metric asks for.
#[derive(Debug, Clone, Serialize)]
pub struct MetricInput {
    pub metric: Metric,
    /// Average over the instances that reported it, percent.
    pub value: f64,
    pub target: f64,
    pub ratio: f64,
    /// Instances that reported this metric.
    pub reporting: u32,
    pub within_tolerance: bool,
    pub desired: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Above `scale_up_threshold`: add capacity now.
    Urgent,
    Normal,
    /// Below `scale_down_threshold`: paying for idle instances.
    OverProvisioned,
}

impl Urgency {
    pub fn name(self) -> &'static str {
        match self {
            Urgency::Urgent => "urgent",
            Urgency::Normal => "normal",
            Urgency::OverProvisioned => "over_provisioned",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ScaleUp,
    ScaleDown,
    Hold,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub current_instances: u32,
    pub desired_instances: u32,
    /// Before the stabilisation window (already clamped to min/max).
    pub raw_desired_instances: u32,
    pub action: Action,
    /// The metric that drove `raw_desired_instances` (none when every metric was within
    /// tolerance or missing).
    pub metric: Option<Metric>,
    pub urgency: Urgency,
    pub inputs: Vec<MetricInput>,
    /// A scale-down held back by a higher recent recommendation.
    pub stabilized: bool,
    /// The highest recommendation of the stabilisation window, this one included.
    pub window_highest: u32,
    pub clamped: Option<&'static str>,
    pub reason: String,
}

/// Decides for `instances` (each with its latest fresh sample) given the recommendations
/// of the stabilisation window (`recent`, clamped values as recorded).
pub fn decide(instances: &[InstanceNow], cfg: &ScalabilityConfig, recent: &[u32]) -> Decision {
    let current = u32::try_from(instances.len()).unwrap_or(u32::MAX);
    let mut inputs = Vec::new();
    let targets = [
        (Metric::Cpu, cfg.target_cpu),
        (Metric::Memory, cfg.target_memory),
    ];
    for (metric, target) in targets {
        if target > 0.0 {
            if let Some(input) = per_metric(instances, metric, target, cfg.tolerance) {
                inputs.push(input);
            }
        }
    }
    // The largest over metrics; a metric within tolerance asks for `current`.
    let driver = inputs
        .iter()
        .filter(|i| !i.within_tolerance)
        .max_by_key(|i| i.desired);
    let unclamped = driver.map_or(current, |d| d.desired);
    let (min, max) = (cfg.min_instances, cfg.max_instances.max(cfg.min_instances));
    let raw = unclamped.clamp(min, max);
    let clamped = if unclamped > max {
        Some("max_instances")
    } else if unclamped < min {
        Some("min_instances")
    } else {
        None
    };
    let window_highest = recent.iter().copied().fold(raw, u32::max);
    let (desired, stabilized) = if raw < current {
        let held = window_highest.min(current);
        (held, held > raw)
    } else {
        (raw, false)
    };
    let action = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleUp,
        std::cmp::Ordering::Less => Action::ScaleDown,
        std::cmp::Ordering::Equal => Action::Hold,
    };
    let cpu = inputs.iter().find(|i| i.metric == Metric::Cpu);
    let urgency = match cpu.map(|c| c.value) {
        Some(v) if v >= cfg.scale_up_threshold => Urgency::Urgent,
        Some(v) if v <= cfg.scale_down_threshold => Urgency::OverProvisioned,
        _ => Urgency::Normal,
    };
    let mut d = Decision {
        current_instances: current,
        desired_instances: desired,
        raw_desired_instances: raw,
        action,
        metric: driver.map(|d| d.metric),
        urgency,
        inputs,
        stabilized,
        window_highest,
        clamped,
        reason: String::new(),
    };
    d.reason = reason(&d, cfg);
    d
}

/// The HPA's per-metric step, including how it treats instances that did not report the
/// metric: assumed idle (0%) when scaling up, at the target when scaling down, so a
/// missing sample never makes the fleet move further than the reporting ones ask.
fn per_metric(
    instances: &[InstanceNow],
    metric: Metric,
    target: f64,
    tolerance: f64,
) -> Option<MetricInput> {
    let current = instances.len() as f64;
    let values: Vec<f64> = instances.iter().filter_map(|i| metric.of(i)).collect();
    if values.is_empty() {
        return None;
    }
    let value = values.iter().sum::<f64>() / values.len() as f64;
    let missing = current - values.len() as f64;
    let mut ratio = value / target;
    if missing > 0.0 && (ratio - 1.0).abs() > tolerance {
        let assumed = if ratio > 1.0 { 0.0 } else { target };
        let adjusted = (values.iter().sum::<f64>() + assumed * missing) / current / target;
        // The guess may flip the direction or land within tolerance: then nothing moves.
        if (adjusted - 1.0).abs() <= tolerance || (adjusted > 1.0) != (ratio > 1.0) {
            ratio = 1.0;
        } else {
            ratio = adjusted;
        }
    }
    let within = (ratio - 1.0).abs() <= tolerance;
    let desired = if within {
        current
    } else {
        // A hair above an integer from float noise must not add an instance.
        ((current * ratio) - 1e-9).ceil().max(0.0)
    };
    Some(MetricInput {
        metric,
        value,
        target,
        ratio,
        reporting: values.len() as u32,
        within_tolerance: within,
        desired: desired as u32,
    })
}

fn reason(d: &Decision, cfg: &ScalabilityConfig) -> String {
    let n = d.current_instances;
    let plural = |k: u32| if k == 1 { "instance" } else { "instances" };
    let mut out = match d.inputs.iter().find(|i| Some(i.metric) == d.metric) {
        Some(i) => format!(
            "{} averages {:.1}% across {n} {} against a target of {:.0}%: ceil({n} x {:.1} / {:.0}) = {}",
            i.metric.name(),
            i.value,
            plural(n),
            i.target,
            i.value,
            i.target,
            i.desired
        ),
        None if d.inputs.is_empty() => {
            format!("{n} {} running, none reported CPU or memory", plural(n))
        }
        None => {
            let parts: Vec<String> = d
                .inputs
                .iter()
                .map(|i| format!("{} {:.1}% (target {:.0}%)", i.metric.name(), i.value, i.target))
                .collect();
            format!(
                "{} within {:.0}% of target across {n} {}: no change",
                parts.join(", "),
                cfg.tolerance * 100.0,
                plural(n)
            )
        }
    };
    match d.clamped {
        Some("max_instances") => {
            out.push_str(&format!("; capped at max_instances {}", cfg.max_instances))
        }
        Some(_) => out.push_str(&format!("; raised to min_instances {}", cfg.min_instances)),
        None => {}
    }
    if d.stabilized {
        out.push_str(&format!(
            "; scale-down held at {} by the highest recommendation of the last {} s",
            d.desired_instances, cfg.stabilization_window
        ));
    }
    match d.urgency {
        Urgency::Urgent => out.push_str(&format!(
            "; urgent: CPU is above the scale-up threshold of {:.0}%",
            cfg.scale_up_threshold
        )),
        Urgency::OverProvisioned => out.push_str(&format!(
            "; over-provisioned: CPU is below the scale-down threshold of {:.0}%",
            cfg.scale_down_threshold
        )),
        Urgency::Normal => {}
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(cpus: &[f64]) -> Vec<InstanceNow> {
        cpus.iter()
            .enumerate()
            .map(|(i, c)| InstanceNow {
                instance: format!("i{i}"),
                cpu: Some(*c),
                memory: None,
                requests_per_second: None,
                p95_latency: None,
                connections: None,
                age_seconds: 1.0,
            })
            .collect()
    }

    fn cfg() -> ScalabilityConfig {
        ScalabilityConfig::default()
    }

    #[test]
    fn the_three_examples() {
        let d = decide(&fleet(&[90.0; 3]), &cfg(), &[]);
        assert_eq!((d.current_instances, d.desired_instances), (3, 4));
        assert_eq!(d.metric, Some(Metric::Cpu));
        assert_eq!(d.urgency, Urgency::Urgent);
        let d = decide(&fleet(&[73.0; 3]), &cfg(), &[]);
        assert_eq!(d.desired_instances, 3, "within tolerance");
        assert_eq!(d.action, Action::Hold);
        let d = decide(&fleet(&[95.0; 10]), &cfg(), &[]);
        assert_eq!(d.desired_instances, 10);
        assert_eq!(d.clamped, Some("max_instances"));
        assert!(d.reason.contains("max_instances 10"), "{}", d.reason);
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let d = decide(&fleet(&[20.0; 3]), &cfg(), &[4, 3]);
        assert_eq!(d.raw_desired_instances, 1);
        assert_eq!(d.desired_instances, 3);
        assert!(d.stabilized);
        assert_eq!(d.urgency, Urgency::OverProvisioned);
        let d = decide(&fleet(&[20.0; 3]), &cfg(), &[2, 1]);
        assert_eq!(d.desired_instances, 2, "highest of the window");
        let d = decide(&fleet(&[20.0; 3]), &cfg(), &[]);
        assert_eq!(d.desired_instances, 1);
        assert_eq!(d.action, Action::ScaleDown);
    }

    #[test]
    fn largest_metric_wins_and_missing_values_are_cautious() {
        let mut f = fleet(&[35.0; 4]);
        for i in &mut f {
            i.memory = Some(96.0);
        }
        let d = decide(&f, &cfg(), &[]);
        assert_eq!(d.metric, Some(Metric::Memory));
        assert_eq!(d.desired_instances, 5, "ceil(4 x 96 / 80)");
        // Two of four report 140%: the silent two count as idle when scaling up.
        let mut f = fleet(&[140.0, 140.0, 0.0, 0.0]);
        f[2].cpu = None;
        f[3].cpu = None;
        let d = decide(&f, &cfg(), &[]);
        assert_eq!(d.desired_instances, 4, "280 / 4 = 70%: at target");
    }

    #[test]
    fn min_instances_is_a_floor() {
        let mut c = cfg();
        c.min_instances = 2;
        let d = decide(&fleet(&[5.0]), &c, &[]);
        assert_eq!(d.desired_instances, 2);
        assert_eq!(d.clamped, Some("min_instances"));
    }
}
