//! A performance sample as trackers send it, and its validation.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::Metric;
use crate::http::ingest::{
    field_error, opt_duration, text, Ctx, FieldError, IngestItem, MAX_SHORT, MAX_URL,
};
use crate::store::{Batch, PerformanceRow};

/// CLS is unitless; real pages stay far below this.
const MAX_CLS: f64 = 100.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<Uuid>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    route: Option<String>,
    lcp: Option<f64>,
    inp: Option<f64>,
    cls: Option<f64>,
    fcp: Option<f64>,
    ttfb: Option<f64>,
    fid: Option<f64>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    connection: Option<String>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

impl IngestItem for PerformanceIn {
    type Row = PerformanceRow;

    fn into_row(self, ctx: &Ctx<'_>) -> Result<PerformanceRow, FieldError> {
        if [self.lcp, self.inp, self.cls, self.fcp, self.ttfb, self.fid]
            .iter()
            .all(Option::is_none)
        {
            return Err(field_error(
                "lcp",
                "is missing, as are inp, cls, fcp, ttfb and fid: a sample needs at least one metric",
            ));
        }
        let cls = match self.cls {
            Some(c) if !c.is_finite() || c < 0.0 => {
                return Err(field_error("cls", "must be a finite number >= 0"))
            }
            Some(c) if c > MAX_CLS => {
                return Err(field_error("cls", format!("must be at most {MAX_CLS}")))
            }
            other => other,
        };
        Ok(PerformanceRow {
            id: ctx.id(self.id),
            user_id: self.user_id,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            route: text(self.route, "route", MAX_URL)?,
            lcp: opt_duration(self.lcp, Metric::Lcp.column())?,
            inp: opt_duration(self.inp, Metric::Inp.column())?,
            cls,
            fcp: opt_duration(self.fcp, Metric::Fcp.column())?,
            ttfb: opt_duration(self.ttfb, Metric::Ttfb.column())?,
            fid: opt_duration(self.fid, Metric::Fid.column())?,
            user_agent: ctx.user_agent(self.user_agent)?,
            connection: text(self.connection, "connection", MAX_SHORT)?,
            ip: ctx.ip(self.ip)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        })
    }

    fn into_batch(rows: Vec<PerformanceRow>) -> Batch {
        Batch::Performance(rows)
    }
}
