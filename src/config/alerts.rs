//! `[alerts]`: rule evaluation, Alertmanager's grouping timers, the receivers, and the
//! duration type (`30`, `"30s"`, `"5m"`, `"4h"`, `"1d"`) its timers are written in.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::registry::{self, section, Kind, Setting};

section! {
    /// `[alerts]`: the guide's thresholds as live rules, and where notifications go.
    pub struct AlertsConfig {
        enabled: bool = true
            => "evaluate alert rules and send notifications";
        interval: Secs = Secs(30)
            => "time between evaluation rounds: seconds, or 30s, 5m, 4h";
        default_for: Secs = Secs(300)
            => "how long a rule's condition must hold before it fires, unless the rule says (its `for`)";
        min_samples: u64 = 20
            => "fewest samples in a window before a rule judges it; fewer is \"no data\"";
        group_wait: Secs = Secs(30)
            => "wait before a new alert group's first notification (Alertmanager's group_wait)";
        group_interval: Secs = Secs(300)
            => "wait between notifications of a group whose alerts changed (group_interval)";
        repeat_interval: Secs = Secs(4 * 3600)
            => "wait before repeating an unchanged firing group (repeat_interval)";
        retry_for: Secs = Secs(24 * 3600)
            => "how long a failing notification is retried before it is given up";
        #[serde(skip_serializing_if = "Option::is_none")]
        webhook_url: Option<String> = None
            => "a webhook receiving Alertmanager's v4 payload; the one-line way to get notified";
        #[serde(skip_serializing_if = "Option::is_none")]
        slack_webhook_url: Option<String> = None
            => "a Slack incoming webhook URL";
        #[serde(skip_serializing_if = "Option::is_none")]
        discord_webhook_url: Option<String> = None
            => "a Discord webhook URL";
        #[serde(skip_serializing_if = "Option::is_none")]
        external_url: Option<String> = None
            => "the dashboard's public address, for links in notifications";
        channels: Vec<AlertChannelConfig> = Vec::new()
            => "more receivers, one [[alerts.channels]] table each: name, kind (webhook, slack or discord), url";
        rules: Vec<toml::Table> = Vec::new()
            => "rules, one [[alerts.rules]] table each, as POST /api/alerts/rules takes them; one named like a built-in rule replaces it";
    }
}

/// One notification receiver.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChannelConfig {
    pub name: String,
    /// `webhook` (Alertmanager v4 payload), `slack` or `discord`.
    #[serde(default)]
    pub kind: AlertChannelKind,
    pub url: String,
}

impl Setting for Vec<AlertChannelConfig> {
    const KIND: Kind = Kind::Table;
}

impl Setting for Vec<toml::Table> {
    const KIND: Kind = Kind::Table;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertChannelKind {
    #[default]
    Webhook,
    Slack,
    Discord,
}

/// The longest timer: a year (so instants computed from them stay in range).
const MAX_TIMER: u64 = 366 * 86_400;

impl AlertsConfig {
    /// The section's own checks, each naming its key.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        if self.interval.0 == 0 {
            return Err(("alerts.interval".into(), "must be at least 1 second".into()));
        }
        for (key, d) in [
            ("interval", self.interval),
            ("default_for", self.default_for),
            ("group_wait", self.group_wait),
            ("group_interval", self.group_interval),
            ("repeat_interval", self.repeat_interval),
            ("retry_for", self.retry_for),
        ] {
            if d.0 > MAX_TIMER {
                return Err((format!("alerts.{key}"), "must be at most 366 days".into()));
            }
        }
        let urls = [
            ("alerts.webhook_url".to_string(), self.webhook_url.as_ref()),
            (
                "alerts.slack_webhook_url".to_string(),
                self.slack_webhook_url.as_ref(),
            ),
            (
                "alerts.discord_webhook_url".to_string(),
                self.discord_webhook_url.as_ref(),
            ),
            (
                "alerts.external_url".to_string(),
                self.external_url.as_ref(),
            ),
        ]
        .into_iter()
        .chain(
            self.channels
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("alerts.channels[{i}].url"), Some(&c.url))),
        );
        for (key, url) in urls {
            if let Some(u) = url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err((key, format!("{u:?} is not an http(s) URL")));
                }
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err((
                    format!("alerts.channels[{i}].name"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }

    /// Masks the receivers' URLs: Slack's and Discord's carry their secret in the path.
    pub(super) fn mask(&mut self) {
        for url in [
            &mut self.webhook_url,
            &mut self.slack_webhook_url,
            &mut self.discord_webhook_url,
        ] {
            if url.is_some() {
                *url = Some("********".into());
            }
        }
        for c in &mut self.channels {
            c.url = "********".into();
        }
    }
}

/// A duration in whole seconds. In files, the environment and API bodies: a number of
/// seconds (`30`, or `"30"`), or one count with a unit: `"30s"`, `"5m"`, `"4h"`, `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Secs(pub u64);

impl Setting for Secs {
    const KIND: Kind = Kind::Duration;
}

impl Secs {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Whole numbers a JSON float can hold exactly; `60.0` is an integer to JSON Schema.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration: seconds, or a count with s, m, h or d such as 30s, 5m, 4h")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Secs, E> {
                Ok(Secs(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Secs, E> {
                u64::try_from(n)
                    .map(Secs)
                    .map_err(|_| E::custom(format!("{n} is negative; durations are >= 0")))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Secs, E> {
                if f.fract() == 0.0 && (0.0..=EXACT_F64).contains(&f) {
                    Ok(Secs(f as u64))
                } else {
                    Err(E::custom(format!("{f} is not a whole number of seconds")))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Secs, E> {
                parse_duration(s).map(Secs).ok_or_else(|| {
                    E::custom(format!(
                        "{s:?} is not a duration such as 30, 30s, 5m, 4h or 1d"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Seconds per unit letter.
pub const DURATION_UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];

/// `"30"` or `"30s"` -> 30, `"5m"` -> 300, `"4h"` -> 14400, `"1d"` -> 86400: digits without
/// a leading zero (or `0`), then at most one unit. `None` for anything else or on overflow.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c)),
        Some(_) => (s, None),
        None => return None,
    };
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain || digits.len() > 20 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let per = match unit {
        None => 1,
        Some(u) => DURATION_UNITS.iter().find(|(c, _)| *c == u)?.1,
    };
    n.checked_mul(per)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("30"), Some(30));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("4h"), Some(14_400));
        assert_eq!(parse_duration("1d"), Some(86_400));
        for bad in [
            "", "m", "5x", "5m3", "1h30m", "05m", "-5", "+5", " 5", "5 m", "5M", "5é", "é",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    proptest! {
        /// Any text: a number of seconds or `None`, never a panic; the language is
        /// `(0|[1-9][0-9]*)[smhd]?`, which is what the OpenAPI patterns state.
        #[test]
        fn duration_language(s in "\\PC{0,12}|[0-9]{1,22}[smhdx]?") {
            let digits = s.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or(&s);
            let shape = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            let fits = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(86_400)).is_some();
            match parse_duration(&s) {
                Some(_) => prop_assert!(shape),
                None => prop_assert!(!shape || !fits),
            }
        }

        #[test]
        fn counts_round_trip(n in 0u64..1_000_000, unit in prop::sample::select(vec!["", "s", "m", "h", "d"])) {
            let per = match unit { "m" => 60, "h" => 3600, "d" => 86_400, _ => 1 };
            prop_assert_eq!(parse_duration(&format!("{n}{unit}")), Some(n * per));
        }
    }
}
