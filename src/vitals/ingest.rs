//! Performance reports as clients send them, in two shapes: a whole page view (our
//! tracker, or the guide's `performance_metrics` row) or one web-vitals metric object
//! (the web-vitals library, Next.js `useReportWebVitals`), validated into rows.

use std::hash::{Hash, Hasher};

use axum::http::{header, HeaderMap};
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::route::{path_of, template};
use super::{Device, Metric};
use crate::http::body::parse_value;
use crate::http::ingest::{
    duration, field_error, ingest_item, opt_duration, properties, text, user_id, Ctx, FieldError,
    IngestItem, JsonInt, Skipped, UserId, MAX_SHORT, MAX_URL,
};
use crate::http::openapi::IpText;
use crate::state::{AppState, RecentKeys};
use crate::store::{Batch, PerformanceRow};

/// CLS is unitless; real pages stay far below this.
const MAX_CLS: f64 = 100.0;
const MAX_NAV_TYPE: usize = 32;

ingest_item! { who
/// A page view's metrics in one object: the guide's row, plus what our tracker adds.
/// Multi-word fields also accept their camelCase spelling.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PerformanceSample)]
pub struct PerformanceIn {
    /// Kept as sent; when absent, the templated path.
    #[schema(max_length = 2048)]
    route: Option<String>,
    #[schema(max_length = 2048)]
    path: Option<String>,
    /// Its path is used as `path`.
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// Milliseconds.
    #[schema(minimum = 0, maximum = 86400000)]
    lcp: Option<f64>,
    #[schema(minimum = 0, maximum = 86400000)]
    inp: Option<f64>,
    /// Unitless.
    #[schema(minimum = 0, maximum = 100)]
    cls: Option<f64>,
    #[schema(minimum = 0, maximum = 86400000)]
    fcp: Option<f64>,
    #[schema(minimum = 0, maximum = 86400000)]
    ttfb: Option<f64>,
    #[schema(minimum = 0, maximum = 86400000)]
    fid: Option<f64>,
    /// The page view this reports on; reports of one page view replace each other.
    #[serde(alias = "metricId")]
    #[schema(max_length = 256)]
    metric_id: Option<String>,
    /// 1 for the first report of `metric_id`, 2 for the next, ...
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    report: Option<JsonInt>,
    #[serde(alias = "navigationType")]
    #[schema(max_length = 32)]
    navigation_type: Option<String>,
    /// Default: from the user agent.
    #[schema(inline)]
    device: Option<DeviceName>,
    #[serde(alias = "userAgent")]
    #[schema(max_length = 512)]
    user_agent: Option<String>,
    #[schema(max_length = 256)]
    connection: Option<String>,
    #[schema(inline)]
    ip: Option<IpText>,
}
}

/// One metric as web-vitals hands it to `onLCP(...)` and Next.js to `useReportWebVitals`:
/// `{name, value, id, delta, rating, navigationType, attribution?, entries}`. Fields we do
/// not store (`entries`, Next.js `label` and `startTime`, later additions) are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = WebVital)]
pub struct WebVitalIn {
    /// LCP, INP, CLS, FCP, TTFB or FID, in any letter case.
    name: String,
    /// Milliseconds (CLS: unitless, at most 100).
    #[schema(minimum = 0)]
    value: Option<f64>,
    /// web-vitals' id of this metric instance.
    #[schema(max_length = 256)]
    id: Option<String>,
    delta: Option<f64>,
    /// Checked (one of three words), not stored: the server rates values itself.
    #[schema(inline)]
    #[allow(dead_code)]
    rating: Option<RatingName>,
    #[serde(alias = "navigationType")]
    #[schema(max_length = 32)]
    navigation_type: Option<String>,
    /// At most 16 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    attribution: Option<Value>,
    // What a reporter may add around the object.
    #[schema(max_length = 2048)]
    route: Option<String>,
    #[schema(max_length = 2048)]
    path: Option<String>,
    #[schema(max_length = 2048)]
    url: Option<String>,
    #[serde(alias = "sessionId")]
    #[schema(max_length = 256)]
    session_id: Option<String>,
    #[serde(alias = "userId")]
    #[schema(inline)]
    user_id: Option<UserId>,
    #[schema(inline)]
    device: Option<DeviceName>,
    #[schema(max_length = 256)]
    connection: Option<String>,
    #[serde(alias = "userAgent")]
    #[schema(max_length = 512)]
    user_agent: Option<String>,
    /// When it happened by the client's clock, milliseconds since the Unix epoch (2000 to
    /// 2100); default now. Reads order and filter by the event time derived from it.
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    timestamp: Option<JsonInt>,
    /// The client's clock when it sent this item (or its batch), milliseconds since the
    /// Unix epoch (2000 to 2100). With `timestamp`, corrects the client's clock skew:
    /// event time = receive time - (sent_at - timestamp). Also accepted once per request as `?sent_at=`.
    #[serde(alias = "sentAt")]
    #[schema(value_type = Option<i64>, minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    sent_at: Option<JsonInt>,
}

/// A device class as clients name it: exactly `mobile`, `tablet`, `desktop` or `unknown`.
#[derive(Debug)]
pub struct DeviceName(Device);

impl<'de> Deserialize<'de> for DeviceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Device::ALL
            .into_iter()
            .find(|dev| dev.as_str() == s)
            .map(DeviceName)
            .ok_or_else(|| serde::de::Error::custom("must be mobile, tablet, desktop or unknown"))
    }
}

impl PartialSchema for DeviceName {
    fn schema() -> RefOr<Schema> {
        crate::http::params::enum_schema(
            &Device::ALL.map(Device::as_str),
            "Device class; default: from the user agent",
        )
    }
}
impl ToSchema for DeviceName {}

/// web-vitals' rating of a value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RatingName {
    Good,
    NeedsImprovement,
    Poor,
}

/// One item of `POST /api/analytics/performance`: a page view's sample, a web-vitals
/// metric object (it has `name`), or anything labelled `custom`. Next.js hands its own
/// timings (`Next.js-hydration`, ...) to the same callback with `label: "custom"`: they
/// are not web vitals, so they are counted as ignored, not refused, and an app can
/// forward everything `useReportWebVitals` gives it.
#[derive(Debug)]
pub struct PerformanceItem(Value);

impl<'de> Deserialize<'de> for PerformanceItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(PerformanceItem)
    }
}

/// What the request itself says about the page, for items that do not.
pub struct Origin<'a> {
    /// The `Referer` header: a same-origin report's page URL.
    pub referer: Option<&'a str>,
    pub recent: &'a RecentKeys,
}

impl IngestItem for PerformanceItem {
    type Row = PerformanceRow;
    type Scope<'a> = Origin<'a>;
    const SKIPPED: Skipped = Skipped::Ignored;

    fn scope<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Origin<'a> {
        Origin {
            referer: same_origin_referer(headers),
            recent: &state.recent_metrics,
        }
    }

    fn into_row(
        self,
        ctx: &Ctx<'_>,
        origin: &Origin<'_>,
    ) -> Result<Option<PerformanceRow>, FieldError> {
        let item = self.0;
        if item.get("label").and_then(Value::as_str) == Some("custom") {
            return Ok(None);
        }
        let row = if item.get("name").is_some() {
            parse_value::<WebVitalIn>(item, None)
                .map_err(FieldError::from_api)?
                .into_row(ctx, origin)
        } else {
            parse_value::<PerformanceIn>(item, None)
                .map_err(FieldError::from_api)?
                .into_row(ctx, origin)
        };
        row.map(Some)
    }

    fn into_batch(rows: Vec<PerformanceRow>) -> Batch {
        Batch::Performance(rows)
    }
}

/// The `Referer` when the report comes from a page on this server's host: browsers send
/// only the origin to other sites, which would file every cross-origin report under `/`.
fn same_origin_referer(headers: &HeaderMap) -> Option<&str> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let after_scheme = referer.split_once("://")?.1;
    let referer_host = after_scheme.split(['/', '?', '#']).next()?;
    referer_host.eq_ignore_ascii_case(host).then_some(referer)
}

/// The metric names `WebVitalIn` takes, in any letter case: a pattern per metric class.
fn names_pattern(metrics: &[Metric]) -> String {
    let any_case = |name: &str| -> String {
        name.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()))
            .collect()
    };
    let alts: Vec<String> = metrics.iter().map(|m| any_case(m.column())).collect();
    format!("^(?:{})$", alts.join("|"))
}

/// What the body's items may be: a sample with at least one metric, a web-vitals object
/// (CLS at most 100, the others at most a day in milliseconds), or a `custom` timing.
impl PartialSchema for PerformanceItem {
    fn schema() -> RefOr<Schema> {
        let mut any = AnyOfBuilder::new().description(Some(
            "A page view's sample (at least one metric), a web-vitals metric object (it has \
             `name`), or an item labelled `custom` (counted as ignored)",
        ));
        if let RefOr::T(Schema::Object(sample)) = PerformanceIn::schema() {
            for m in Metric::ALL {
                let mut one = sample.clone();
                let max = if m == Metric::Cls { 100 } else { 86_400_000 };
                one.properties.insert(
                    m.column().into(),
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .minimum(Some(0))
                        .maximum(Some(max))
                        .into(),
                );
                one.required.push(m.column().into());
                any = any.item(one);
            }
        }
        if let RefOr::T(Schema::Object(vital)) = WebVitalIn::schema() {
            let others: Vec<Metric> = Metric::ALL
                .into_iter()
                .filter(|m| *m != Metric::Cls)
                .collect();
            for (metrics, max) in [(vec![Metric::Cls], 100), (others, 86_400_000)] {
                let mut one = vital.clone();
                one.properties.insert(
                    "name".into(),
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(names_pattern(&metrics)))
                        .into(),
                );
                one.properties.insert(
                    "value".into(),
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .minimum(Some(0))
                        .maximum(Some(max))
                        .into(),
                );
                one.required = vec!["name".into(), "value".into()];
                any = any.item(one);
            }
        }
        any.item(
            ObjectBuilder::new()
                .property(
                    "label",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["custom"])),
                )
                .required("label"),
        )
        .into()
    }
}

impl ToSchema for PerformanceItem {
    fn name() -> std::borrow::Cow<'static, str> {
        "PerformanceReport".into()
    }
}

impl PerformanceIn {
    fn into_row(self, ctx: &Ctx<'_>, origin: &Origin<'_>) -> Result<PerformanceRow, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
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
        let report = self.report.map(|r| r.0);
        if report.is_some_and(|r| !(1..=i64::from(u32::MAX)).contains(&r)) {
            return Err(field_error("report", "counts from 1 (to 4294967295)"));
        }
        let (route, path) = place(self.route, self.path, self.url, origin.referer)?;
        let user_agent = ctx.user_agent(self.user_agent)?;
        let metric_id = text(self.metric_id, "metric_id", MAX_SHORT)?;
        let device = device(self.device, user_agent.as_deref());
        let rereport =
            repeated(origin.recent, metric_id.as_deref(), None) || report.is_some_and(|n| n > 1);
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
            device: Some(device.as_str().into()),
            user_agent,
            connection: text(self.connection, "connection", MAX_SHORT)?,
            ip: ctx.ip(self.ip.map(|i| i.0))?,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
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
        let times = ctx.times(self.timestamp, self.sent_at, None)?;
        // The name exactly, in any letter case: the schema's pattern states no spaces.
        let exact = self.name.trim().len() == self.name.len();
        let metric = Metric::from_name(&self.name)
            .filter(|_| exact)
            .ok_or_else(|| {
                field_error(
                    "name",
                    format!(
                        "{:?} is not a web vital we store; send LCP, INP, CLS, FCP, TTFB or FID",
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
        let device = device(self.device, user_agent.as_deref());
        // web-vitals reports `delta == value` the first time and the change afterwards.
        let changed = self.delta.is_some_and(|d| (d - value).abs() > 1e-9);
        let rereport = repeated(origin.recent, metric_id.as_deref(), Some(metric)) || changed;
        let mut row = PerformanceRow {
            id: ctx.id(None),
            user_id: user_id(self.user_id)?,
            session_id: text(self.session_id, "sessionId", MAX_SHORT)?,
            route,
            device: Some(device.as_str().into()),
            user_agent,
            connection: text(self.connection, "connection", MAX_SHORT)?,
            ip: ctx.ip(None)?,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
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

fn device(given: Option<DeviceName>, user_agent: Option<&str>) -> Device {
    match given {
        Some(d) => d.0,
        None => user_agent.map_or(Device::Unknown, Device::from_user_agent),
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
