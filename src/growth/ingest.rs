//! Events and conversions as apps send them (`analytics.track`, `analytics.conversion`),
//! enriched at ingest: who (user or cookieless visitor), which feature, which browser, OS,
//! device, referring site and campaign. Bots are dropped before anything is stored.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::enrich;
use crate::error::ApiError;
use crate::http::agent;
use crate::http::body;
use crate::http::ingest::{
    field_error, properties, required, text, user_id, Ctx, FieldError, UserId, MAX_SHORT, MAX_URL,
};
use crate::http::Sender;
use crate::state::AppState;
use crate::store::{Batch, ConversionRow, EventRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<UserId>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    event: String,
    properties: Option<serde_json::Value>,
    route: Option<String>,
    referrer: Option<String>,
    #[serde(alias = "userAgent")]
    user_agent: Option<String>,
    ip: Option<String>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionIn {
    id: Option<Uuid>,
    #[serde(alias = "userId")]
    user_id: Option<UserId>,
    #[serde(alias = "sessionId")]
    session_id: Option<String>,
    funnel: String,
    step: String,
    #[serde(alias = "props")]
    properties: Option<serde_json::Value>,
    timestamp: Option<i64>,
    #[serde(alias = "createdAt")]
    created_at: Option<DateTime<Utc>>,
}

/// What one request knows beyond its items: who sent it, from which site, and the config.
pub struct Request<'a> {
    pub ctx: Ctx<'a>,
    pub secret: &'a [u8; 32],
    pub sender_ip: IpAddr,
    pub sender_ua: Option<&'a str>,
    /// The page's site: the Origin's host, else the Host header.
    pub site: String,
    pub features: &'a [String],
}

impl Request<'_> {
    /// The person behind an item: its user id, else the visitor id of the sender.
    fn visitor(
        &self,
        user: &Option<String>,
        ip: Option<&str>,
        ua: Option<&str>,
    ) -> Result<String, FieldError> {
        if let Some(u) = user {
            return Ok(u.clone());
        }
        let ip = match ip {
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| field_error("ip", "is not an IPv4 or IPv6 address"))?,
            None => self.sender_ip,
        };
        Ok(enrich::visitor_id(
            self.secret,
            self.ctx.now_ms(),
            &self.site,
            ip,
            ua.unwrap_or_default(),
        ))
    }
}

impl EventIn {
    /// The stored row, or `None` for a bot.
    pub fn into_row(self, req: &Request<'_>) -> Result<Option<EventRow>, FieldError> {
        let ctx = &req.ctx;
        let user_agent = ctx.user_agent(self.user_agent)?;
        let agent = user_agent.as_deref().map(agent::parse);
        if agent.as_ref().is_some_and(|a| a.bot) {
            return Ok(None);
        }
        let user = user_id(self.user_id)?;
        let visitor = req.visitor(&user, self.ip.as_deref(), user_agent.as_deref())?;
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
        let ip = ctx.ip(self.ip)?;
        Ok(Some(EventRow {
            id: ctx.id(self.id),
            user_id: user,
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            properties: properties(props.map(serde_json::Value::Object))?,
            event,
            route,
            referrer,
            ip,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
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

impl ConversionIn {
    pub fn into_row(self, req: &Request<'_>) -> Result<ConversionRow, FieldError> {
        let ctx = &req.ctx;
        let user = user_id(self.user_id)?;
        let visitor = req.visitor(&user, None, req.sender_ua)?;
        Ok(ConversionRow {
            id: ctx.id(self.id),
            user_id: user,
            visitor_id: Some(visitor),
            session_id: text(self.session_id, "session_id", MAX_SHORT)?,
            funnel: required(self.funnel, "funnel", MAX_SHORT)?,
            step: required(self.step, "step", MAX_SHORT)?,
            properties: properties(self.properties)?,
            timestamp: ctx.timestamp(self.timestamp)?,
            created_at: ctx.created_at(self.created_at)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub accepted: usize,
    /// Items dropped because their user agent is a crawler.
    #[serde(skip_serializing_if = "is_zero")]
    pub bots: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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

async fn read_items<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Vec<T>, bool), ApiError> {
    let cfg = &state.config.ingest;
    let bytes = body::read(headers, body, cfg.body_limit).await?;
    body::parse_items::<T>(&bytes, cfg.max_batch)
}

fn request<'a>(state: &'a AppState, sender: &'a Sender, headers: &HeaderMap) -> Request<'a> {
    Request {
        ctx: Ctx::new(sender, &state.privacy, Utc::now()),
        secret: &state.privacy.salt,
        sender_ip: sender.ip,
        sender_ua: sender.user_agent.as_deref(),
        site: site(headers),
        features: &state.config.analytics.features,
    }
}

/// `POST /api/analytics/events`: a batch with one bad item writes nothing.
pub async fn events(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let (items, is_batch) = read_items::<EventIn>(&state, &headers, body).await?;
    let req = request(&state, &sender, &headers);
    let mut rows = Vec::with_capacity(items.len());
    let mut bots = 0;
    for (i, item) in items.into_iter().enumerate() {
        match item.into_row(&req) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => bots += 1,
            Err(e) => return Err(ApiError::invalid(is_batch.then_some(i), e.field, e.message)),
        }
    }
    let accepted = rows.len();
    state.store.append(Batch::Events(rows)).await?;
    Ok(Json(Accepted { accepted, bots }))
}

/// `POST /api/analytics/conversions`.
pub async fn conversions(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let (items, is_batch) = read_items::<ConversionIn>(&state, &headers, body).await?;
    let req = request(&state, &sender, &headers);
    let rows = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            item.into_row(&req)
                .map_err(|e| ApiError::invalid(is_batch.then_some(i), e.field, e.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = rows.len();
    state.store.append(Batch::Conversions(rows)).await?;
    Ok(Json(Accepted { accepted, bots: 0 }))
}
