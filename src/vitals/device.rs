//! Device class of a sample: what the client says, else what its user agent says.

use serde::Serialize;

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
        Device::parse(&crate::http::agent::parse(ua).device).unwrap_or(Device::Unknown)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
