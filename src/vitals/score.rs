//! The 0-100 performance score: each metric on a log-normal curve (Lighthouse's method,
//! as Sentry applies it to real-user data), weighted over the metrics present.

use super::{Device, Metric};

/// Sentry's weights; FID carries none (INP replaced it).
pub fn weight(m: Metric) -> f64 {
    match m {
        Metric::Lcp => 30.0,
        Metric::Inp => 30.0,
        Metric::Cls => 15.0,
        Metric::Fcp => 15.0,
        Metric::Ttfb => 10.0,
        Metric::Fid => 0.0,
    }
}

/// (p10, median): the value that scores 0.9 and the one that scores 0.5.
pub fn control_points(m: Metric, device: Device) -> (f64, f64) {
    match (m, device.is_desktop()) {
        (Metric::Lcp, true) => (1200.0, 2400.0),
        (Metric::Fcp, true) => (900.0, 1600.0),
        (Metric::Ttfb, true) => (200.0, 400.0),
        (Metric::Lcp, false) => (2500.0, 4000.0),
        (Metric::Fcp, false) => (1800.0, 3000.0),
        (Metric::Ttfb, false) => (800.0, 1800.0),
        (Metric::Inp, _) => (200.0, 500.0),
        (Metric::Cls, _) => (0.1, 0.25),
        (Metric::Fid, _) => (100.0, 300.0),
    }
}

/// One metric's score in 0..=1:
/// `(1 - erf(ln(v / median) * 0.9061938024368232 / -ln(p10 / median))) / 2`,
/// where 0.9061938... is erfinv(0.8), so that p10 scores exactly 0.9.
pub fn metric_score(m: Metric, device: Device, value: f64) -> f64 {
    let (p10, median) = control_points(m, device);
    if value <= 0.0 {
        return 1.0;
    }
    let x = (value / median).ln() * 0.906_193_802_436_823_2 / -(p10 / median).ln();
    ((1.0 - erf(x)) / 2.0).clamp(0.0, 1.0)
}

/// 0..=100 from the metrics present, each weighted; `None` when no weighted metric is.
pub fn score(device: Device, values: &[(Metric, f64)]) -> Option<f64> {
    let (sum, weights) =
        values
            .iter()
            .filter(|(m, _)| weight(*m) > 0.0)
            .fold((0.0, 0.0), |(s, w), (m, v)| {
                (
                    s + weight(*m) * metric_score(*m, device, *v),
                    w + weight(*m),
                )
            });
    (weights > 0.0).then(|| 100.0 * sum / weights)
}

/// erf by Abramowitz and Stegun 7.1.26 (error below 1.5e-7), as std has none.
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn control_points_score_as_defined() {
        for m in [
            Metric::Lcp,
            Metric::Inp,
            Metric::Cls,
            Metric::Fcp,
            Metric::Ttfb,
        ] {
            for d in [Device::Desktop, Device::Mobile] {
                let (p10, median) = control_points(m, d);
                assert!(close(metric_score(m, d, p10), 0.9), "{m:?} {d:?}");
                assert!(close(metric_score(m, d, median), 0.5), "{m:?} {d:?}");
            }
        }
        assert!(close(erf(0.906_193_802_436_823_2), 0.8));
        assert!(metric_score(Metric::Lcp, Device::Mobile, 10_000.0) < 0.1);
        assert_eq!(metric_score(Metric::Cls, Device::Mobile, 0.0), 1.0);
    }

    #[test]
    fn weights_over_present_metrics() {
        // LCP at its median (0.5) and CLS at p10 (0.9): (30 * 0.5 + 15 * 0.9) / 45.
        let s = score(
            Device::Mobile,
            &[
                (Metric::Lcp, 4000.0),
                (Metric::Cls, 0.1),
                (Metric::Fid, 1e6),
            ],
        )
        .unwrap();
        assert!(close(s, 100.0 * (15.0 + 13.5) / 45.0), "{s}");
        assert_eq!(score(Device::Desktop, &[(Metric::Fid, 50.0)]), None);
    }
}
