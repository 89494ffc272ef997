//! One load sample as an app instance reports it (`POST /api/analytics/system`).

use serde::Deserialize;

use crate::http::ingest::{field_error, required, Ctx, FieldError, IngestItem, MAX_SHORT};
use crate::store::{Batch, SystemRow};

/// Above this a "percent" is a unit mistake (a fraction sent as 0-1 is allowed through:
/// it just reads as nearly idle, which the dashboard shows plainly).
const MAX_PERCENT: f64 = 1000.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleIn {
    instance: String,
    /// Percent of the instance's CPU limit (may pass 100 on a burstable limit).
    cpu: Option<f64>,
    /// Percent of the instance's memory limit.
    memory: Option<f64>,
    #[serde(alias = "requestsPerSecond")]
    requests_per_second: Option<f64>,
    /// Milliseconds.
    #[serde(alias = "p95Latency")]
    p95_latency: Option<f64>,
    connections: Option<i64>,
    /// Share of responses that were 5xx, 0-1.
    #[serde(alias = "errorRate")]
    error_rate: Option<f64>,
    /// Milliseconds since the epoch; now when absent.
    timestamp: Option<i64>,
}

fn percent(v: Option<f64>, field: &'static str) -> Result<Option<f64>, FieldError> {
    match v {
        Some(p) if !p.is_finite() || !(0.0..=MAX_PERCENT).contains(&p) => Err(field_error(
            field,
            "must be a percentage between 0 and 1000",
        )),
        other => Ok(other),
    }
}

fn non_negative(v: Option<f64>, field: &'static str) -> Result<Option<f64>, FieldError> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => {
            Err(field_error(field, "must be a finite number >= 0"))
        }
        other => Ok(other),
    }
}

impl IngestItem for SampleIn {
    type Row = SystemRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<SystemRow, FieldError> {
        if self.cpu.is_none() && self.memory.is_none() && self.requests_per_second.is_none() {
            return Err(field_error(
                "cpu",
                "is required unless memory or requests_per_second is sent",
            ));
        }
        let error_rate = match self.error_rate {
            Some(r) if !r.is_finite() || !(0.0..=1.0).contains(&r) => {
                return Err(field_error("error_rate", "must be a share between 0 and 1"))
            }
            other => other,
        };
        let connections = self
            .connections
            .map(|c| {
                i32::try_from(c)
                    .ok()
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| field_error("connections", "must be an integer >= 0"))
            })
            .transpose()?;
        let p95 = non_negative(self.p95_latency, "p95_latency")?;
        if p95.is_some_and(|v| v > crate::http::ingest::MAX_DURATION_MS) {
            return Err(field_error(
                "p95_latency",
                "is longer than a day; send milliseconds",
            ));
        }
        Ok(SystemRow {
            instance: required(self.instance.trim().to_string(), "instance", MAX_SHORT)?,
            source: "app",
            ts: ctx.timestamp(self.timestamp)? * 1000,
            cpu: percent(self.cpu, "cpu")?,
            memory: percent(self.memory, "memory")?,
            requests_per_second: non_negative(self.requests_per_second, "requests_per_second")?,
            p95_latency: p95,
            connections,
            error_rate,
            created_at: ctx.now_us,
            ..Default::default()
        })
    }

    fn into_batch(rows: Vec<SystemRow>) -> Batch {
        Batch::System(rows)
    }
}
