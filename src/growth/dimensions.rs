//! What the growth overview breaks events down by, shared by its roll-up and its reads.

/// Event names that count as page views: the tracker's, and the common spelling.
pub const PAGEVIEW_EVENTS: &str = "('pageview', 'page_view')";

/// The dimensions of the breakdown query, in its GROUPING SETS order.
pub const DIMENSIONS: [&str; 9] = [
    "events",
    "routes",
    "referrers",
    "utm_sources",
    "utm_mediums",
    "utm_campaigns",
    "browsers",
    "os",
    "devices",
];

/// The column behind each of `DIMENSIONS`, and whether it counts page views only.
pub const COLUMNS: [(&str, bool); 9] = [
    ("event", false),
    ("route", true),
    ("referrer_domain", true),
    ("utm_source", true),
    ("utm_medium", true),
    ("utm_campaign", true),
    ("browser", false),
    ("os", false),
    ("device", false),
];
