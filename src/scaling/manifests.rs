//! The settings and the current recommendation, ready to apply: a Kubernetes
//! `autoscaling/v2` HorizontalPodAutoscaler, a KEDA `ScaledObject`, and the
//! `docker compose up --scale` / `kubectl scale` lines for the count recommended now.

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::ScalabilityConfig;

/// `is_dns_label` as a JSON Schema pattern, for the OpenAPI document.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// The manifests and command lines of `GET /api/scaling/manifests`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Manifests {
    pub name: String,
    pub namespace: String,
    /// What the `compose` and `kubectl` lines set: the recommendation, else `min_instances`.
    pub replicas: u32,
    /// A Kubernetes `autoscaling/v2` HorizontalPodAutoscaler (YAML).
    pub hpa: String,
    /// A KEDA `ScaledObject` (YAML).
    pub keda: String,
    /// `docker compose up -d --scale name=replicas`.
    pub compose: String,
    /// `kubectl scale` to the recommended count.
    pub kubectl: String,
}

/// Whether `s` is a Kubernetes object name (RFC 1123 label): what `name` and `namespace`
/// must be, so the YAML needs no quoting and cannot be broken by input.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn render(a: &ScalabilityConfig, name: &str, namespace: &str, replicas: u32) -> Manifests {
    let (min, max) = (a.min_instances, a.max_instances.max(a.min_instances));
    let cpu = a.target_cpu.round() as u32;
    let memory = a.target_memory.round() as u32;
    let window = a.stabilization_window;
    let mut hpa = format!(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  namespace: {namespace}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {cpu}
"
    );
    if memory > 0 {
        hpa.push_str(&format!(
            "    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {memory}
"
        ));
    }
    hpa.push_str(&format!(
        "  behavior:
    scaleDown:
      stabilizationWindowSeconds: {window}
    scaleUp:
      stabilizationWindowSeconds: 0
"
    ));
    let mut keda = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
  namespace: {namespace}
spec:
  scaleTargetRef:
    name: {name}
  minReplicaCount: {min}
  maxReplicaCount: {max}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: {window}
  triggers:
    - type: cpu
      metricType: Utilization
      metadata:
        value: \"{cpu}\"
"
    );
    if memory > 0 {
        keda.push_str(&format!(
            "    - type: memory
      metricType: Utilization
      metadata:
        value: \"{memory}\"
"
        ));
    }
    Manifests {
        name: name.to_string(),
        namespace: namespace.to_string(),
        replicas,
        compose: format!("docker compose up -d --scale {name}={replicas}"),
        kubectl: format!("kubectl -n {namespace} scale deployment/{name} --replicas={replicas}"),
        hpa,
        keda,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every string of the documented pattern is a name; any other text is refused
        /// without a panic, and what is accepted has the label's shape.
        #[test]
        fn names_match_their_pattern(
            good in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
            any in "\\PC{0,80}",
        ) {
            prop_assert!(is_dns_label(&good));
            if is_dns_label(&any) {
                prop_assert!(any.len() <= 63 && !any.starts_with('-') && !any.ends_with('-'));
                prop_assert!(any.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(is_dns_label("web-1"));
        for bad in [
            "",
            "Web",
            "a_b",
            "-a",
            "a-",
            "a b",
            "a\nkind: Secret",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn hpa_carries_the_settings() {
        let m = render(&ScalabilityConfig::default(), "web", "shop", 4);
        assert!(m.hpa.contains("minReplicas: 1\n  maxReplicas: 10"));
        assert!(m.hpa.contains("averageUtilization: 70"));
        assert!(m.hpa.contains("averageUtilization: 80"), "memory target");
        assert!(m.hpa.contains("stabilizationWindowSeconds: 300"));
        assert!(m.keda.contains("value: \"70\""));
        assert_eq!(m.compose, "docker compose up -d --scale web=4");
    }
}
