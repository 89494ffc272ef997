//! Performance reports as clients send them, in two shapes: a whole page view (our
//! tracker, or the guide's `performance_metrics` row) or one web-vitals metric object
//! (the web-vitals library, Next.js `useReportWebVitals`), validated into rows.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::route::{path_of, template};
use super::{Device, Metric};
use crate::error::ApiError;
use crate::http::body::parse_value;
use crate::http::ingest::{
    duration, field_error, opt_duration, properties, text, user_id, Ctx, FieldError, UserId,
    MAX_SHORT, MAX_URL,
};
use crate::state::RecentKeys;
use crate::store::PerformanceRow;

/// CLS is unitless; real pages stay far below this.
const MAX_CLS: f64 = 100.0;
const MAX_NAV_TYPE: usize = 32;

/// A page view's metrics in one object: the guide's row, plus what our tracker adds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<UserId>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    route: Option<String>,
    path: Option<String>,
    url: Option<String>,
    lcp: Option<f64>,
    inp: Option<f64>,
    cls: Option<f64>,
    fcp: Option<f64>,
    ttfb: Option<f64>,
    fid: Option<f64>,
    /// The page view this reports on; reports of one page view replace each other.
    #[serde(alias = "metricId")]
    metric_id: Option<String>,
    /// 1 for the first report of `metric_id`, 2 for the next, ...
    report: Option<u32>,
    #[serde(alias = "navigationType")]
    navigation_type: Option<String>,
    device: Option<String>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    connection: Option<String>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

/// One metric as web-vitals hands it to `onLCP(...)` and Next.js to `useReportWebVitals`:
/// `{name, value, id, delta, rating, navigationType, attribution?, entries}`. Fields we do
/// not store (`entries`, Next.js `label` and `startTime`, later additions) are ignored.
#[derive(Debug, Deserialize)]
pub struct WebVitalIn {
    name: String,
    value: Option<f64>,
    id: Option<String>,
    delta: Option<f64>,
    rating: Option<String>,
    #[serde(alias = "navigationType")]
    navigation_type: Option<String>,
    attribution: Option<Value>,
    // What a reporter may add around the object.
    route: Option<String>,
    path: Option<String>,
    url: Option<String>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    #[serde(alias = "userId")]
    user_id: Option<UserId>,
    device: Option<String>,
    connection: Option<String>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    timestamp: Option<i64>,
}

/// What the request itself says about the page, for items that do not.
pub struct Origin<'a> {
    /// The `Referer` header: a same-origin report's page URL.
    pub referer: Option<&'a str>,
    pub recent: &'a RecentKeys,
}

/// Validates every item (either shape) into rows; the first bad item fails them all.
pub fn rows(
    items: Vec<Value>,
    is_batch: bool,
    ctx: &Ctx<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<PerformanceRow>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let index = is_batch.then_some(i);
            let is_metric_object = item.get("name").is_some();
            let row = if is_metric_object {
                parse_value::<WebVitalIn>(item, index)?.into_row(ctx, origin)
            } else {
                parse_value::<PerformanceIn>(item, index)?.into_row(ctx, origin)
            };
            row.map_err(|e| ApiError::invalid(index, e.field, e.message))
        })
        .collect()
}

impl PerformanceIn {
    fn into_row(self, ctx: &Ctx<'_>, origin: &Origin<'_>) -> Result<PerformanceRow, FieldError> {
        if [self.lcp, self.inp, self.cls, self.fcp, self.ttfb, self.fid]
            .iter()
            .all(Option::is_none)
        {
            return Err(field_error(
                "lcp",
                "is missing, as are inp, cls, fcp, ttfb and fid: a sample needs at least one metric \
                 (or send a web-vitals object with name and value)",
            ));
        }
        if self.report == Some(0) {
            return Err(field_error("report", "counts from 1"));
        }
        let (route, path) = place(self.route, self.path, self.url, origin.referer)?;
        let user_agent = ctx.user_agent(self.user_agent)?;
        let metric_id = text(self.metric_id, "metric_id", MAX_SHORT)?;
        let rereport = repeated(origin.recent, metric_id.as_deref(), None)
            || self.report.is_some_and(|n| n > 1);
        Ok(PerformanceRow {
            id: ctx.id(self.id),
            user_id: user_id(self.user_id)?,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            route,
            lcp: opt_duration(self.lcp, Metric::Lcp.column())?,
            inp: opt_duration(self.inp, Metric::Inp.column())?,
            cls: self.cls.map(cls).transpose()?,
            fcp: opt_duration(self.fcp, Metric::Fcp.column())?,
            ttfb: opt_duration(self.ttfb, Metric::Ttfb.column())?,
            fid: opt_duration(self.fid, Metric::Fid.column())?,
            device: Some(device(self.device, user_agent.as_deref())?.as_str().into()),
            user_agent,
            connection: text(self.connection, "connection", MAX_SHORT)?,
            ip: ctx.ip(self.ip)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
            metric_id,
            metric: None,
            rereport,
            navigation_type: text(self.navigation_type, "navigation_type", MAX_NAV_TYPE)?,
            path,
            attribution: None,
        })
    }
}

impl WebVitalIn {
    fn into_row(self, ctx: &Ctx<'_>, origin: &Origin<'_>) -> Result<PerformanceRow, FieldError> {
        let metric = Metric::from_name(&self.name).ok_or_else(|| {
            field_error(
                "name",
                format!(
                    "{:?} is not a web vital we store; send LCP, INP, CLS, FCP, TTFB or FID \
                     (Next.js custom metrics such as Next.js-hydration have label \"custom\": filter them out)",
                    self.name
                ),
            )
        })?;
        let value = self.value.ok_or_else(|| {
            field_error(
                "value",
                "is required and must be a finite number (JSON.stringify turns NaN into null)",
            )
        })?;
        let value = match metric {
            Metric::Cls => cls(value).map_err(|e| field_error("value", e.message))?,
            _ => duration(value, "value")?,
        };
        if self.delta.is_some_and(|d| !d.is_finite()) {
            return Err(field_error("delta", "must be a finite number"));
        }
        if let Some(r) = &self.rating {
            if !matches!(r.as_str(), "good" | "needs-improvement" | "poor") {
                return Err(field_error(
                    "rating",
                    "must be good, needs-improvement or poor",
                ));
            }
        }
        let attribution = match self.attribution {
            Some(v @ Value::Object(_)) => properties(Some(v)).map_err(|e| {
                field_error(
                    "attribution",
                    e.message.replace("properties", "attribution"),
                )
            })?,
            None | Some(Value::Null) => None,
            Some(_) => return Err(field_error("attribution", "must be a JSON object")),
        };
        let (route, path) = place(self.route, self.path, self.url, origin.referer)?;
        let user_agent = ctx.user_agent(self.user_agent)?;
        let metric_id = text(self.id, "id", MAX_SHORT)?;
        // web-vitals reports `delta == value` the first time and the change afterwards.
        let changed = self.delta.is_some_and(|d| (d - value).abs() > 1e-9);
        let rereport = repeated(origin.recent, metric_id.as_deref(), Some(metric)) || changed;
        let mut row = PerformanceRow {
            id: ctx.id(None),
            user_id: user_id(self.user_id)?,
            session_id: text(self.session_id, "sessionId", MAX_SHORT)?,
            route,
            device: Some(device(self.device, user_agent.as_deref())?.as_str().into()),
            user_agent,
            connection: text(self.connection, "connection", MAX_SHORT)?,
            ip: ctx.ip(None)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.now_us,
            metric_id,
            metric: Some(metric.column().into()),
            rereport,
            navigation_type: text(self.navigation_type, "navigationType", MAX_NAV_TYPE)?,
            path,
            attribution,
            ..Default::default()
        };
        let slot = match metric {
            Metric::Lcp => &mut row.lcp,
            Metric::Inp => &mut row.inp,
            Metric::Cls => &mut row.cls,
            Metric::Fcp => &mut row.fcp,
            Metric::Ttfb => &mut row.ttfb,
            Metric::Fid => &mut row.fid,
        };
        *slot = Some(value);
        Ok(row)
    }
}

fn cls(v: f64) -> Result<f64, FieldError> {
    if !v.is_finite() || v < 0.0 {
        return Err(field_error("cls", "must be a finite number >= 0"));
    }
    if v > MAX_CLS {
        return Err(field_error("cls", format!("must be at most {MAX_CLS}")));
    }
    Ok(v)
}

/// The route (a template) and the path: a route the client sends is kept as it is;
/// otherwise the path (from `path`, `url` or the Referer) is templated.
fn place(
    route: Option<String>,
    path: Option<String>,
    url: Option<String>,
    referer: Option<&str>,
) -> Result<(Option<String>, Option<String>), FieldError> {
    let route = text(route, "route", MAX_URL)?.filter(|r| !r.trim().is_empty());
    let path = text(path, "path", MAX_URL)?;
    let url = text(url, "url", MAX_URL)?;
    let raw = match (path.or(url), &route) {
        (Some(p), _) => Some(p),
        (None, None) => referer.map(str::to_string),
        (None, Some(_)) => None,
    };
    let path = raw.map(|r| match path_of(&r) {
        "" => "/".to_string(),
        p => p.to_string(),
    });
    let route = route.or_else(|| path.as_deref().map(template));
    Ok((route, path))
}

fn device(given: Option<String>, user_agent: Option<&str>) -> Result<Device, FieldError> {
    match given {
        Some(d) => Device::parse(&d)
            .ok_or_else(|| field_error("device", "must be mobile, tablet, desktop or unknown")),
        None => Ok(user_agent.map_or(Device::Unknown, Device::from_user_agent)),
    }
}

/// Whether this (metric_id, metric) was reported lately.
fn repeated(recent: &RecentKeys, metric_id: Option<&str>, metric: Option<Metric>) -> bool {
    let Some(id) = metric_id else { return false };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, metric.map(Metric::column)).hash(&mut h);
    recent.seen(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placing_a_report() {
        let p =
            |route: Option<&str>, path: Option<&str>, url: Option<&str>, referer: Option<&str>| {
                place(
                    route.map(Into::into),
                    path.map(Into::into),
                    url.map(Into::into),
                    referer,
                )
                .unwrap()
            };
        assert_eq!(
            p(None, Some("/recipes/12"), None, None),
            (Some("/recipes/:id".into()), Some("/recipes/12".into()))
        );
        assert_eq!(
            p(Some("/recipes/[id]"), Some("/recipes/12"), None, None),
            (Some("/recipes/[id]".into()), Some("/recipes/12".into()))
        );
        assert_eq!(
            p(None, None, Some("https://a.example/u/7?q=1"), None),
            (Some("/u/:id".into()), Some("/u/7".into()))
        );
        assert_eq!(
            p(None, None, None, Some("https://a.example/plan/3")),
            (Some("/plan/:id".into()), Some("/plan/3".into()))
        );
        assert_eq!(
            p(Some("/x"), None, None, Some("https://a.example/plan/3")),
            (Some("/x".into()), None)
        );
        assert_eq!(p(None, None, None, None), (None, None));
    }
}
