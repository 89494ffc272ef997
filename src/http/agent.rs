//! User agents: browser, OS and device class through `woothee`, bots recognised, with a
//! small cache because a site's traffic repeats the same few hundred agents.

use std::num::NonZeroUsize;
use std::sync::{Mutex, OnceLock};

use lru::LruCache;

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
    if let Some(a) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(ua) {
        return a.clone();
    }
    let agent = parse_uncached(ua);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .put(ua.to_string(), agent.clone());
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
        device: crate::vitals::Device::from_category(category, ua)
            .as_str()
            .to_string(),
        bot: category == "crawler" || looks_like_bot(ua),
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

    proptest::proptest! {
        /// Arbitrary User-Agent text: an agent, never a panic.
        #[test]
        fn any_user_agent(ua in "\\PC*") {
            let a = parse(&ua);
            proptest::prop_assert!(["desktop", "mobile", "tablet", "unknown"].contains(&a.device.as_str()));
        }
    }
}
