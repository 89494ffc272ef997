//! Events and conversions as apps send them (`analytics.track`, `analytics.conversion`),
//! enriched at ingest: who (user or cookieless visitor), which feature, which browser, OS,
//! device, referring site and campaign. Bots are dropped before anything is stored.

use axum::http::{header, HeaderMap};
use serde::Deserialize;
use utoipa::ToSchema;

use super::enrich;
use crate::http::agent;
use crate::http::ingest::{
    field_error, ingest_item, properties, required, text, user_id, Ctx, FieldError, IngestItem,
    Skipped, MAX_SHORT, MAX_URL,
};
use crate::http::openapi::IpText;
use crate::state::AppState;
use crate::store::{Batch, ConversionRow, EventRow};

ingest_item! { who
/// One event as `analytics.track(event, properties)` sends it. Multi-word fields also
/// accept their camelCase spelling.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Event)]
pub struct EventIn {
    #[schema(min_length = 1, max_length = 256)]
    event: String,
    /// At most 16 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Value>,
    #[schema(max_length = 2048)]
    route: Option<String>,
    #[schema(max_length = 2048)]
    referrer: Option<String>,
    /// Default: the User-Agent header. A crawler's events are dropped (counted in `bots`).
    #[serde(alias = "userAgent")]
    #[schema(max_length = 512)]
    user_agent: Option<String>,
    #[schema(inline)]
    ip: Option<IpText>,
}
}

ingest_item! { who
/// One step a person reached in a named funnel, as `analytics.conversion(...)` sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Conversion)]
pub struct ConversionIn {
    #[schema(min_length = 1, max_length = 256)]
    funnel: String,
    #[schema(min_length = 1, max_length = 256)]
    step: String,
    /// At most 16 KiB of JSON; also accepted as `props`.
    #[serde(alias = "props")]
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Value>,
}
}

/// What one request knows beyond its items and `Ctx`: the salt, the page's site and the
/// configured features.
pub struct Request<'a> {
    pub secret: &'a [u8; 32],
    /// The page's site: the Origin's host, else the Host header.
    pub site: String,
    pub features: &'a [String],
}

impl Request<'_> {
    /// The person behind an item: its user id, else the visitor id of the sender.
    fn visitor(
        &self,
        ctx: &Ctx<'_>,
        user: &Option<String>,
        ip: Option<&str>,
        ua: Option<&str>,
    ) -> Result<String, FieldError> {
        if let Some(u) = user {
            return Ok(u.clone());
        }
        let ip = match ip {
            Some(s) => s
                .parse()
                .map_err(|_| field_error("ip", "is not an IPv4 or IPv6 address"))?,
            None => ctx.sender_ip,
        };
        Ok(enrich::visitor_id(
            self.secret,
            ctx.now_ms(),
            &self.site,
            ip,
            ua.unwrap_or_default(),
        ))
    }
}

fn request<'a>(state: &'a AppState, headers: &HeaderMap) -> Request<'a> {
    Request {
        secret: &state.privacy.salt,
        site: site(headers),
        features: &state.config.analytics.features,
    }
}

impl IngestItem for EventIn {
    type Row = EventRow;
    type Scope<'a> = Request<'a>;
    const SKIPPED: Skipped = Skipped::Bots;

    fn scope<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Request<'a> {
        request(state, headers)
    }

    fn into_batch(rows: Vec<EventRow>) -> Batch {
        Batch::Events(rows)
    }

    /// The stored row, or `None` for a bot.
    fn into_row(self, ctx: &Ctx<'_>, req: &Request<'_>) -> Result<Option<EventRow>, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
        let ip_text = self.ip.map(|i| i.0);
        let user_agent = ctx.user_agent(self.user_agent)?;
        let agent = user_agent.as_deref().map(agent::parse);
        if agent.as_ref().is_some_and(|a| a.bot) {
            return Ok(None);
        }
        let user = user_id(self.user_id)?;
        let visitor = req.visitor(ctx, &user, ip_text.as_deref(), user_agent.as_deref())?;
        let event = required(self.event, "event", MAX_SHORT)?;
        let props = match self.properties {
            Some(serde_json::Value::Object(m)) => Some(m),
            Some(serde_json::Value::Null) | None => None,
            Some(_) => return Err(field_error("properties", "must be a JSON object")),
        };
        let route = text(self.route, "route", MAX_URL)?;
        let referrer = text(self.referrer, "referrer", MAX_URL)?;
        let page_url = props
            .as_ref()
            .and_then(|p| p.get("url"))
            .and_then(|v| v.as_str());
        let own_hosts = [page_url.and_then(enrich::host), Some(req.site.clone())];
        let referrer_domain = enrich::referrer_domain(referrer.as_deref(), &own_hosts);
        let [utm_source, utm_medium, utm_campaign] =
            enrich::utm(props.as_ref(), &[page_url, route.as_deref()]);
        let feature = enrich::feature(&event, props.as_ref(), req.features);
        let ip = ctx.ip(ip_text)?;
        Ok(Some(EventRow {
            id: ctx.id(self.id),
            user_id: user,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            properties: properties(props.map(serde_json::Value::Object))?,
            event,
            route,
            referrer,
            ip,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
            visitor_id: Some(visitor),
            feature,
            browser: agent.as_ref().map(|a| a.browser.clone()),
            os: agent.as_ref().map(|a| a.os.clone()),
            device: agent.map(|a| a.device),
            user_agent,
            referrer_domain,
            utm_source,
            utm_medium,
            utm_campaign,
        }))
    }
}

impl IngestItem for ConversionIn {
    type Row = ConversionRow;
    type Scope<'a> = Request<'a>;

    fn scope<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Request<'a> {
        request(state, headers)
    }

    fn into_batch(rows: Vec<ConversionRow>) -> Batch {
        Batch::Conversions(rows)
    }

    fn into_row(
        self,
        ctx: &Ctx<'_>,
        req: &Request<'_>,
    ) -> Result<Option<ConversionRow>, FieldError> {
        let times = ctx.times(self.timestamp, self.sent_at, self.created_at)?;
        let user = user_id(self.user_id)?;
        let visitor = req.visitor(ctx, &user, None, ctx.sender_user_agent())?;
        Ok(Some(ConversionRow {
            id: ctx.id(self.id),
            user_id: user,
            visitor_id: Some(visitor),
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            funnel: required(self.funnel, "funnel", MAX_SHORT)?,
            step: required(self.step, "step", MAX_SHORT)?,
            properties: properties(self.properties)?,
            timestamp: times.timestamp,
            created_at: times.created_at,
            event_time: Some(times.event_time),
        }))
    }
}

fn site(headers: &HeaderMap) -> String {
    let get = |h| headers.get(h).and_then(|v| v.to_str().ok());
    get(header::ORIGIN)
        .and_then(enrich::host)
        .or_else(|| {
            get(header::HOST).map(|h| {
                let h = h.split(':').next().unwrap_or(h).to_ascii_lowercase();
                h.strip_prefix("www.").unwrap_or(&h).to_string()
            })
        })
        .unwrap_or_default()
}
