//! What the server derives from an event at ingest: the cookieless visitor id, the
//! referring domain, campaign (UTM) parameters and the feature the event stands for.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

const DAY_MS: i64 = 86_400_000;

/// A visitor id for a sender without a user id: a hash of the day's salt, the site, the
/// IP and the user agent. The salt rotates every UTC day, so ids cannot be linked across
/// days, and the IP is only ever an input to the hash.
pub fn visitor_id(secret: &[u8; 32], now_ms: i64, site: &str, ip: IpAddr, ua: &str) -> String {
    let day = now_ms.div_euclid(DAY_MS);
    let mut salt = Sha256::new();
    salt.update(secret);
    salt.update(b"visitor-salt");
    salt.update(day.to_le_bytes());
    let salt = salt.finalize();
    let mut h = Sha256::new();
    h.update(salt);
    for part in [site.as_bytes(), ip.to_string().as_bytes(), ua.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    format!("v_{}", hex::encode(&h.finalize()[..12]))
}

/// The host of an absolute URL, lower case, without `www.`, port or credentials.
pub fn host(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))?
    } else {
        authority.split(':').next()?.to_string()
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    (!host.is_empty()).then_some(host)
}

/// The referring site, unless it is the site itself (moving between pages is not a referral).
pub fn referrer_domain(referrer: Option<&str>, own_hosts: &[Option<String>]) -> Option<String> {
    let domain = host(referrer?)?;
    (!own_hosts.iter().flatten().any(|h| *h == domain)).then_some(domain)
}

/// `utm_source`, `utm_medium`, `utm_campaign`: from the properties when the tracker sent
/// them, otherwise from the query string of the page URL (or the route).
pub fn utm(
    props: Option<&serde_json::Map<String, serde_json::Value>>,
    urls: &[Option<&str>],
) -> [Option<String>; 3] {
    ["utm_source", "utm_medium", "utm_campaign"].map(|key| {
        let from_props = props
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(256).collect());
        from_props.or_else(|| {
            urls.iter()
                .flatten()
                .find_map(|u| query_value(u, key))
                .filter(|s| !s.is_empty())
        })
    })
}

fn query_value(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v).chars().take(256).collect())
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The feature an event stands for: its `feature` property, else the configured mapping
/// (`event=feature`, or a bare `event` naming a feature after itself).
pub fn feature(
    event: &str,
    props: Option<&serde_json::Map<String, serde_json::Value>>,
    mapping: &[String],
) -> Option<String> {
    if let Some(f) = props
        .and_then(|p| p.get("feature"))
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return Some(f.chars().take(256).collect());
    }
    mapping.iter().find_map(|entry| {
        let (ev, feat) = entry.split_once('=').unwrap_or((entry, entry));
        (ev.trim() == event).then(|| feat.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_rotate_daily_and_hide_the_ip() {
        let secret = [9u8; 32];
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let t = 1_767_225_600_000; // midnight UTC
        let a = visitor_id(&secret, t, "app.example", ip, "UA");
        assert_eq!(
            a,
            visitor_id(&secret, t + DAY_MS - 1, "app.example", ip, "UA")
        );
        assert_ne!(a, visitor_id(&secret, t + DAY_MS, "app.example", ip, "UA"));
        assert_ne!(a, visitor_id(&secret, t, "other.example", ip, "UA"));
        assert_ne!(a, visitor_id(&secret, t, "app.example", ip, "UA2"));
        assert_ne!(a, visitor_id(&[1; 32], t, "app.example", ip, "UA"));
        assert!(a.starts_with("v_") && a.len() == 26 && !a.contains("203"));
    }

    #[test]
    fn hosts_and_referrers() {
        assert_eq!(
            host("https://www.Google.com/search?q=1").as_deref(),
            Some("google.com")
        );
        assert_eq!(
            host("http://u:p@news.ycombinator.com:8080").as_deref(),
            Some("news.ycombinator.com")
        );
        assert_eq!(
            host("android-app://com.slack").as_deref(),
            Some("com.slack")
        );
        assert_eq!(host("/relative"), None);
        assert_eq!(host(""), None);
        let own = [Some("app.example".to_string())];
        assert_eq!(referrer_domain(Some("https://app.example/a"), &own), None);
        assert_eq!(
            referrer_domain(Some("https://t.co/x"), &own).as_deref(),
            Some("t.co")
        );
    }

    #[test]
    fn utm_from_props_then_url() {
        let props = serde_json::json!({"utm_source": "newsletter"});
        let p = props.as_object();
        let [s, m, c] = utm(
            p,
            &[Some(
                "https://app.example/?utm_source=x&utm_medium=email&utm_campaign=spring%20sale+2",
            )],
        );
        assert_eq!(s.as_deref(), Some("newsletter"));
        assert_eq!(m.as_deref(), Some("email"));
        assert_eq!(c.as_deref(), Some("spring sale 2"));
        assert_eq!(
            utm(None, &[Some("/x?utm_medium=%zz")])[1].as_deref(),
            Some("%zz")
        );
        assert_eq!(utm(None, &[None, Some("/x")]), [None, None, None]);
    }

    #[test]
    fn features() {
        let mapping = vec![
            "recipe_saved=favourites".to_string(),
            "pantry_opened".into(),
        ];
        let props = serde_json::json!({"feature": "ai_generator"});
        assert_eq!(
            feature("x", props.as_object(), &mapping).as_deref(),
            Some("ai_generator")
        );
        assert_eq!(
            feature("recipe_saved", None, &mapping).as_deref(),
            Some("favourites")
        );
        assert_eq!(
            feature("pantry_opened", None, &mapping).as_deref(),
            Some("pantry_opened")
        );
        assert_eq!(feature("other", None, &mapping), None);
    }

    proptest::proptest! {
        /// Arbitrary referrers, URLs, properties and features: values, never a panic.
        #[test]
        fn any_enrichment_input(s in "\\PC*", t in "\\PC*") {
            let _ = host(&s);
            let _ = referrer_domain(Some(&s), &[Some(t.clone())]);
            let mut props = serde_json::Map::new();
            props.insert("utm_source".into(), serde_json::json!(t));
            props.insert("feature".into(), serde_json::json!(s));
            let _ = utm(Some(&props), &[Some(&s), Some(&t)]);
            let _ = utm(None, &[Some(&s)]);
            let _ = feature(&s, Some(&props), &[t.clone(), format!("{s}={t}")]);
        }
    }
}
