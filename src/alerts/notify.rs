//! What to send, and when: Alertmanager's grouping (one group per rule and channel, with
//! `group_wait`, `group_interval` and `repeat_interval`), silences, and the three body
//! shapes: Alertmanager's webhook v4 payload, a Slack incoming webhook, a Discord webhook.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::outbox::{self, Group, GroupChange, Pending};
use super::rules::{fmt_num, Condition, Rule};
use super::series::{Series, State};
use super::{fingerprint, Engine};
use crate::config::{AlertChannelKind, AlertsConfig};
use crate::store::StoreError;

/// A receiver.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: AlertChannelKind,
    pub url: String,
}

impl Channel {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            AlertChannelKind::Webhook => "webhook",
            AlertChannelKind::Slack => "slack",
            AlertChannelKind::Discord => "discord",
        }
    }
}

/// `alerts.webhook_url` and friends, then `[[alerts.channels]]`.
pub fn channels(cfg: &AlertsConfig) -> Vec<Channel> {
    let mut out = Vec::new();
    for (name, kind, url) in [
        ("webhook", AlertChannelKind::Webhook, &cfg.webhook_url),
        ("slack", AlertChannelKind::Slack, &cfg.slack_webhook_url),
        (
            "discord",
            AlertChannelKind::Discord,
            &cfg.discord_webhook_url,
        ),
    ] {
        if let Some(url) = url {
            out.push(Channel {
                name: name.into(),
                kind,
                url: url.clone(),
            });
        }
    }
    for c in &cfg.channels {
        if !out.iter().any(|o| o.name == c.name) {
            out.push(Channel {
                name: c.name.clone(),
                kind: c.kind,
                url: c.url.clone(),
            });
        }
    }
    out
}

/// Decides which groups are due and queues their notifications (with the log update, in
/// one transaction). Called after every evaluation round.
pub async fn plan(engine: &Engine, now: DateTime<Utc>) -> Result<(), StoreError> {
    if engine.channels.is_empty() {
        return Ok(());
    }
    let cfg = &engine.config.alerts;
    let secs = |s: u64| chrono::Duration::seconds(s as i64);
    let rules = engine.rules();
    let series: Vec<Series> = engine.series.lock().values().cloned().collect();
    let silences = engine.active_silences(now);
    let silenced = |s: &Series| silences.iter().any(|x| x.matches(&s.labels));
    let mut by_rule: HashMap<&str, Vec<&Series>> = HashMap::new();
    for s in &series {
        by_rule.entry(s.rule_id.as_str()).or_default().push(s);
    }

    let mut changes = Vec::new();
    let mut queued = Vec::new();
    {
        let mut groups = engine.groups.lock();
        for rule in &rules {
            let mine = by_rule.get(rule.id.as_str()).cloned().unwrap_or_default();
            let firing: Vec<&Series> = mine
                .iter()
                .copied()
                .filter(|s| s.state == State::Firing && !silenced(s))
                .collect();
            let mut firing_fps: Vec<String> =
                firing.iter().map(|s| s.fingerprint.clone()).collect();
            firing_fps.sort();
            for ch in &engine.channels {
                if !rule.spec.channels.is_empty() && !rule.spec.channels.contains(&ch.name) {
                    continue;
                }
                let k = (ch.name.clone(), rule.id.clone());
                if firing.is_empty() && !groups.contains_key(&k) {
                    continue;
                }
                let fresh = !groups.contains_key(&k);
                let g = groups.entry(k.clone()).or_insert_with(|| Group {
                    first_at: now,
                    sent_at: None,
                    sent_firing: Vec::new(),
                });
                // Sent as firing before, not firing now (and not merely silenced): resolved.
                let resolved: Vec<&Series> = mine
                    .iter()
                    .copied()
                    .filter(|s| g.sent_firing.contains(&s.fingerprint) && s.state != State::Firing)
                    .collect();
                if firing.is_empty() && resolved.is_empty() {
                    // Stopped before its first notification, or silenced: nothing to say.
                    groups.remove(&k);
                    changes.push(GroupChange::Delete(k.0, k.1));
                    continue;
                }
                let due = match g.sent_at {
                    None => now >= g.first_at + secs(cfg.group_wait.0),
                    Some(t) => {
                        (g.sent_firing != firing_fps && now >= t + secs(cfg.group_interval.0))
                            || (!firing.is_empty() && now >= t + secs(cfg.repeat_interval.0))
                    }
                };
                if !due {
                    if fresh {
                        changes.push(GroupChange::Put(k.0.clone(), k.1.clone(), g.clone()));
                    }
                    continue;
                }
                let body = body(
                    ch,
                    rule,
                    &firing,
                    &resolved,
                    now,
                    cfg.external_url.as_deref(),
                );
                queued.push(Pending {
                    channel: ch.name.clone(),
                    kind: ch.kind_name(),
                    url: ch.url.clone(),
                    body,
                    status: if firing.is_empty() {
                        "resolved"
                    } else {
                        "firing"
                    },
                    summary: format!(
                        "[{}:{}] {}",
                        if firing.is_empty() {
                            "RESOLVED"
                        } else {
                            "FIRING"
                        },
                        if firing.is_empty() {
                            resolved.len()
                        } else {
                            firing.len()
                        },
                        rule.spec.name
                    ),
                });
                g.sent_at = Some(now);
                g.sent_firing = firing_fps.clone();
                if firing.is_empty() {
                    groups.remove(&k);
                    changes.push(GroupChange::Delete(k.0, k.1));
                } else {
                    changes.push(GroupChange::Put(k.0, k.1, g.clone()));
                }
            }
        }
        // Groups of rules that no longer exist.
        let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        let gone: Vec<(String, String)> = groups
            .keys()
            .filter(|(_, r)| !ids.contains(&r.as_str()))
            .cloned()
            .collect();
        for k in gone {
            groups.remove(&k);
            changes.push(GroupChange::Delete(k.0, k.1));
        }
    }
    if changes.is_empty() && queued.is_empty() {
        return Ok(());
    }
    outbox::enqueue(engine, queued, changes, now).await
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Alertmanager's "zero" end time for an alert still firing.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn value_text(rule: &Rule, v: Option<f64>) -> String {
    let unit = rule.spec.measure.info().unit;
    match v {
        None => "no data".into(),
        Some(v) if unit.is_empty() => fmt_num(v),
        Some(v) if unit == "%" => format!("{}%", fmt_num(v)),
        Some(v) => format!("{} {unit}", fmt_num(v)),
    }
}

fn annotations(rule: &Rule, s: &Series) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let info = rule.spec.measure.info();
    let agg = format!("{:?}", rule.agg()).to_lowercase();
    let place = if s.series.is_empty() {
        String::new()
    } else {
        format!(" on {}", s.series)
    };
    let summary = match rule.spec.condition {
        Condition::Threshold => format!(
            "{} {agg}{place} is {} (threshold {} {})",
            info.label,
            value_text(rule, s.value),
            rule.spec.op.symbol(),
            value_text(rule, Some(rule.spec.threshold)),
        ),
        Condition::Decline => format!(
            "{}{place} is {}, down from {} a week earlier (alert above {}% decline)",
            info.label,
            value_text(rule, s.value),
            value_text(rule, s.reference),
            fmt_num(rule.spec.threshold),
        ),
        Condition::Anomaly => match s.band {
            Some(b) => format!(
                "{} {agg}{place} is {}, expected {} (band {} to {})",
                info.label,
                value_text(rule, s.value),
                value_text(rule, Some(b.expected)),
                fmt_num(b.lower),
                fmt_num(b.upper),
            ),
            None => format!(
                "{} {agg}{place} is {}",
                info.label,
                value_text(rule, s.value)
            ),
        },
    };
    a.insert(
        "summary".into(),
        rule.spec.summary.clone().unwrap_or(summary),
    );
    a.insert("description".into(), rule.describe());
    if let Some(v) = s.value {
        a.insert("value".into(), fmt_num(v));
    }
    a.insert("threshold".into(), fmt_num(rule.spec.threshold));
    a
}

struct Alert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    fingerprint: String,
}

fn alerts(rule: &Rule, firing: &[&Series], resolved: &[&Series], now: DateTime<Utc>) -> Vec<Alert> {
    let one = |s: &Series, status: &'static str| Alert {
        status,
        labels: s.labels.clone(),
        annotations: annotations(rule, s),
        starts_at: s.firing_since.or(s.active_since).unwrap_or(now),
        ends_at: (status == "resolved").then(|| s.resolved_at.unwrap_or(now)),
        fingerprint: s.fingerprint.clone(),
    };
    firing
        .iter()
        .map(|s| one(s, "firing"))
        .chain(resolved.iter().map(|s| one(s, "resolved")))
        .collect()
}

/// Labels (or annotations) every alert shares.
fn common(maps: Vec<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn webhook(ch: &Channel, group: &str, list: &[Alert], external: &str) -> Value {
    let status = if list.iter().any(|a| a.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let alerts: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({
                "status": a.status,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_at),
                "endsAt": a.ends_at.map_or(ZERO_TIME.to_string(), rfc3339),
                "generatorURL": format!("{external}/#/alerts?rule={}", a.labels.get("rule_id").map_or("", String::as_str)),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={group:?}}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": ch.name,
        "groupLabels": {"alertname": group},
        "commonLabels": common(list.iter().map(|a| &a.labels).collect()),
        "commonAnnotations": common(list.iter().map(|a| &a.annotations).collect()),
        "externalURL": external,
        "alerts": alerts,
    })
}

fn text_lines(list: &[Alert]) -> Vec<String> {
    list.iter()
        .map(|a| {
            let what = a.annotations.get("summary").cloned().unwrap_or_default();
            if a.status == "resolved" {
                format!("resolved: {what}")
            } else {
                what
            }
        })
        .collect()
}

fn title(group: &str, list: &[Alert]) -> String {
    let firing = list.iter().filter(|a| a.status == "firing").count();
    if firing > 0 {
        format!("[FIRING:{firing}] {group}")
    } else {
        format!("[RESOLVED] {group}")
    }
}

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

fn encode(ch: &Channel, group: &str, list: &[Alert], external: &str) -> Value {
    match ch.kind {
        AlertChannelKind::Webhook => webhook(ch, group, list, external),
        AlertChannelKind::Slack => {
            let lines: Vec<String> = text_lines(list)
                .into_iter()
                .map(|l| format!("• {l}"))
                .collect();
            json!({
                "text": clip(format!("*{}* (growth-stack)\n{}\n<{external}/#/alerts|Open alerts>", title(group, list), lines.join("\n")), 3900),
            })
        }
        AlertChannelKind::Discord => {
            let firing = list.iter().any(|a| a.status == "firing");
            json!({
                "content": clip(title(group, list), 2000),
                "embeds": [{
                    "title": clip(title(group, list), 256),
                    "description": clip(text_lines(list).join("\n"), 4000),
                    "color": if firing { 0xE5_484D } else { 0x30_A46C },
                    "url": format!("{external}/#/alerts"),
                }],
                "allowed_mentions": {"parse": []},
            })
        }
    }
}

fn external(url: Option<&str>) -> String {
    url.unwrap_or("http://localhost:8080")
        .trim_end_matches('/')
        .to_string()
}

pub fn body(
    ch: &Channel,
    rule: &Rule,
    firing: &[&Series],
    resolved: &[&Series],
    now: DateTime<Utc>,
    external_url: Option<&str>,
) -> Value {
    let list = alerts(rule, firing, resolved, now);
    encode(ch, &rule.spec.name, &list, &external(external_url))
}

/// The "send test" action's notification: one firing alert named `TestNotification`.
pub fn test_body(ch: &Channel, now: DateTime<Utc>, external_url: Option<&str>) -> Value {
    let labels: BTreeMap<String, String> = [
        ("alertname".to_string(), "TestNotification".to_string()),
        ("severity".to_string(), "info".to_string()),
    ]
    .into();
    let alert = Alert {
        status: "firing",
        fingerprint: fingerprint(&labels),
        labels,
        annotations: [(
            "summary".to_string(),
            format!("Test notification from growth-stack to channel {}", ch.name),
        )]
        .into(),
        starts_at: now,
        ends_at: None,
    };
    encode(ch, "TestNotification", &[alert], &external(external_url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::defaults;

    fn series(route: &str, state: State) -> Series {
        let rule = &defaults()[0];
        let labels = crate::alerts::eval::labels(rule, Some(route));
        Series {
            rule_id: rule.id.clone(),
            series: route.into(),
            fingerprint: fingerprint(&labels),
            labels,
            state,
            value: Some(6500.0),
            samples: 60.0,
            reference: None,
            band: None,
            active_since: Some(Utc::now()),
            firing_since: Some(Utc::now()),
            last_true: None,
            resolved_at: None,
            evaluated_at: Utc::now(),
        }
    }

    #[test]
    fn webhook_body_is_alertmanager_v4() {
        let ch = Channel {
            name: "ops".into(),
            kind: AlertChannelKind::Webhook,
            url: "http://x".into(),
        };
        let rule = &defaults()[0];
        let a = series("/checkout", State::Firing);
        let b = series("/cart", State::Resolved);
        let v = body(&ch, rule, &[&a], &[&b], Utc::now(), None);
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["groupLabels"]["alertname"], "SlowLCP");
        assert_eq!(v["commonLabels"]["alertname"], "SlowLCP");
        assert!(v["commonLabels"].get("route").is_none());
        assert_eq!(v["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(v["alerts"][1]["status"], "resolved");
        assert_eq!(v["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
        let summary = v["alerts"][0]["annotations"]["summary"].as_str().unwrap();
        assert!(
            summary.contains("/checkout") && summary.contains("6500 ms"),
            "{summary}"
        );
    }

    #[test]
    fn slack_and_discord_shapes() {
        let rule = &defaults()[0];
        let a = series("/", State::Firing);
        let mk = |kind| Channel {
            name: "c".into(),
            kind,
            url: String::new(),
        };
        let s = body(
            &mk(AlertChannelKind::Slack),
            rule,
            &[&a],
            &[],
            Utc::now(),
            None,
        );
        assert!(s["text"]
            .as_str()
            .unwrap()
            .starts_with("*[FIRING:1] SlowLCP*"));
        let d = body(
            &mk(AlertChannelKind::Discord),
            rule,
            &[&a],
            &[],
            Utc::now(),
            None,
        );
        assert_eq!(d["content"], "[FIRING:1] SlowLCP");
        assert!(
            d["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .contains("LCP")
                || d["embeds"][0]["description"]
                    .as_str()
                    .unwrap()
                    .contains("Largest")
        );
    }
}
