//! One load sample as an app instance reports it (`POST /api/analytics/system`), and its
//! validation.

use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::ingest::{
    count, field_error, opt_duration, required, Ctx, FieldError, IngestItem, JsonInt, MAX_SHORT,
};
use crate::state::AppState;
use crate::store::{Batch, SystemRow};

/// Above this a "percent" is a unit mistake. A burstable CPU limit may pass 100; a
/// fraction sent as 0-1 is let through and simply reads as nearly idle.
const MAX_PERCENT: f64 = 1000.0;

/// One instance's load. Multi-word fields also accept their camelCase spelling. Every
/// metric is optional: a sample with none is a heartbeat that counts the instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SystemSample)]
pub struct SampleIn {
    /// The instance's name (pod, container or host name); one per running copy of the app.
    #[schema(min_length = 1, max_length = 256)]
    instance: String,
    /// Percent of the instance's CPU limit (a burstable limit may pass 100).
    #[schema(minimum = 0, maximum = 1000)]
    cpu: Option<f64>,
    /// Percent of the instance's memory limit.
    #[schema(minimum = 0, maximum = 1000)]
    memory: Option<f64>,
    #[serde(alias = "requestsPerSecond")]
    #[schema(minimum = 0)]
    requests_per_second: Option<f64>,
    /// Milliseconds.
    #[serde(alias = "p95Latency")]
    #[schema(minimum = 0, maximum = 86400000)]
    p95_latency: Option<f64>,
    /// Open connections (or requests in flight).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    connections: Option<JsonInt>,
    /// Share of responses that were 5xx, 0 to 1.
    #[serde(alias = "errorRate")]
    #[schema(minimum = 0, maximum = 1)]
    error_rate: Option<f64>,
    /// When it was measured, milliseconds since the Unix epoch (2000 to 2100); default now.
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    timestamp: Option<JsonInt>,
}

fn within(
    v: Option<f64>,
    field: &'static str,
    max: f64,
    what: &str,
) -> Result<Option<f64>, FieldError> {
    match v {
        Some(x) if !x.is_finite() || !(0.0..=max).contains(&x) => Err(field_error(field, what)),
        other => Ok(other),
    }
}

impl IngestItem for SampleIn {
    type Row = SystemRow;
    type Scope<'a> = ();

    fn scope<'a>(_: &'a AppState, _: &'a HeaderMap) {}

    fn into_row(self, ctx: &Ctx<'_>, _: &()) -> Result<Option<SystemRow>, FieldError> {
        let percent = "must be a percentage between 0 and 1000";
        Ok(Some(SystemRow {
            instance: required(self.instance, "instance", MAX_SHORT)?,
            source: "app",
            ts: ctx.timestamp(self.timestamp)? * 1000,
            cpu: within(self.cpu, "cpu", MAX_PERCENT, percent)?,
            memory: within(self.memory, "memory", MAX_PERCENT, percent)?,
            requests_per_second: within(
                self.requests_per_second,
                "requests_per_second",
                f64::MAX,
                "must be a finite number >= 0",
            )?,
            p95_latency: opt_duration(self.p95_latency, "p95_latency")?,
            connections: count(self.connections, "connections")?,
            error_rate: within(
                self.error_rate,
                "error_rate",
                1.0,
                "must be a share between 0 and 1",
            )?,
            created_at: ctx.now_us,
            ..Default::default()
        }))
    }

    fn into_batch(rows: Vec<SystemRow>) -> Batch {
        Batch::System(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Sender;
    use crate::state::IpPolicy;

    fn row(json: &str) -> Result<Option<SystemRow>, FieldError> {
        let sender = Sender {
            ip: "127.0.0.1".parse().unwrap(),
            user_agent: None,
        };
        let policy = IpPolicy {
            mode: crate::config::IpMode::None,
            salt: std::sync::Arc::new([0; 32]),
        };
        let ctx = Ctx::new(&sender, &policy, chrono::Utc::now());
        serde_json::from_str::<SampleIn>(json)
            .map_err(|e| field_error("(json)", e.to_string()))?
            .into_row(&ctx, &())
    }

    #[test]
    fn samples_are_checked() {
        let r = row(r#"{"instance":"web-1","cpu":90,"memory":40.5,"connections":3.0}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.cpu, r.memory, r.connections),
            (Some(90.0), Some(40.5), Some(3))
        );
        assert!(
            row(r#"{"instance":"web-1"}"#).unwrap().is_some(),
            "a heartbeat"
        );
        for (bad, field) in [
            (r#"{"instance":"","cpu":1}"#, "instance"),
            (r#"{"instance":"a","cpu":-1}"#, "cpu"),
            (r#"{"instance":"a","memory":1001}"#, "memory"),
            (r#"{"instance":"a","error_rate":2}"#, "error_rate"),
            (r#"{"instance":"a","connections":-3}"#, "connections"),
            (r#"{"instance":"a","p95_latency":1e12}"#, "p95_latency"),
            (r#"{"instance":"a","timestamp":1700000000}"#, "timestamp"),
        ] {
            let e = row(bad).unwrap_err();
            assert_eq!(e.field, field, "{bad}");
        }
    }
}
