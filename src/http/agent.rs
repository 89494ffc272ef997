//! User agents: browser, OS and device class through `woothee`, bots recognised, with a
//! small cache because a site's traffic repeats the same few hundred agents. The one
//! home of the device class that events and web vitals both store.

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use parking_lot::Mutex;

use lru::LruCache;
use serde::Serialize;

const CACHE_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub browser: String,
    pub os: String,
    /// desktop, mobile, tablet or unknown: the same classes as the web-vitals pages use.
    pub device: String,
    pub bot: bool,
}

/// Parses `ua` (cached). An absent agent is a server-side sender, never a bot.
pub fn parse(ua: &str) -> Agent {
    static CACHE: OnceLock<Mutex<LruCache<String, Agent>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        Mutex::new(LruCache::new(
            NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
        ))
    });
    if let Some(a) = cache.lock().get(ua) {
        return a.clone();
    }
    let agent = parse_uncached(ua);
    cache.lock().put(ua.to_string(), agent.clone());
    agent
}

fn parse_uncached(ua: &str) -> Agent {
    let parsed = woothee::parser::Parser::new().parse(ua);
    let (browser, os, category) = parsed
        .as_ref()
        .map_or(("UNKNOWN", "UNKNOWN", "UNKNOWN"), |r| {
            (r.name, r.os, r.category)
        });
    Agent {
        browser: browser.to_string(),
        os: os.to_string(),
        device: Device::from_category(category, ua).as_str().to_string(),
        bot: category == "crawler" || looks_like_bot(ua),
    }
}

/// Device class of a sample or an event: what the client says, else what its user agent says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
    Unknown,
}

impl Device {
    pub const ALL: [Device; 4] = [
        Device::Mobile,
        Device::Tablet,
        Device::Desktop,
        Device::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
            Device::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Device> {
        Device::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The class of a user agent, from the one shared (cached) user-agent parse.
    pub fn from_user_agent(ua: &str) -> Device {
        Device::parse(&parse(ua).device).unwrap_or(Device::Unknown)
    }

    /// The class for woothee's `category` of `ua`, for callers that parsed it already.
    pub fn from_category(category: &str, ua: &str) -> Device {
        match category {
            "pc" => Device::Desktop,
            "smartphone" | "mobilephone" => {
                let android_tablet = ua.contains("Android") && !ua.contains("Mobile");
                if ua.contains("iPad") || ua.contains("Tablet") || android_tablet {
                    Device::Tablet
                } else {
                    Device::Mobile
                }
            }
            _ => Device::Unknown,
        }
    }

    /// Phones and tablets are scored against the mobile control points.
    pub fn is_desktop(self) -> bool {
        self == Device::Desktop
    }
}

/// Self-declared crawlers woothee does not know: they name a contact URL or call
/// themselves a spider or crawler. Plain HTTP libraries (curl, server SDKs) are not bots.
fn looks_like_bot(ua: &str) -> bool {
    let ua = ua.to_ascii_lowercase();
    [
        "+http",
        "spider",
        "crawler",
        "bot/",
        "bot;",
        "headlesschrome/bot",
    ]
    .iter()
    .any(|s| ua.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_devices_and_bots() {
        let iphone = parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(
            (
                iphone.browser.as_str(),
                iphone.os.as_str(),
                iphone.device.as_str()
            ),
            ("Safari", "iPhone", "mobile")
        );
        assert!(!iphone.bot);
        let desktop = parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36");
        assert_eq!(
            (desktop.browser.as_str(), desktop.device.as_str()),
            ("Chrome", "desktop")
        );
        for bot in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Baiduspider",
        ] {
            assert!(parse(bot).bot, "{bot}");
        }
        assert!(!parse("curl/8.5.0").bot);
        assert!(!parse("growth-stack-bench").bot);
    }

    #[test]
    fn from_user_agents() {
        let cases = [
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36", Device::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Device::Mobile),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36", Device::Mobile),
            ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", Device::Tablet),
            ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36", Device::Tablet),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36", Device::Desktop),
            ("curl/8.5.0", Device::Unknown),
            ("", Device::Unknown),
        ];
        for (ua, want) in cases {
            assert_eq!(Device::from_user_agent(ua), want, "{ua}");
        }
    }

    proptest::proptest! {
        /// Arbitrary User-Agent text: an agent, never a panic.
        #[test]
        fn any_user_agent(ua in "\\PC*") {
            let a = parse(&ua);
            proptest::prop_assert!(["desktop", "mobile", "tablet", "unknown"].contains(&a.device.as_str()));
        }
    }
}
