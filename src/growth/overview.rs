//! The growth overview: totals, active people and stickiness, and what they came through:
//! top events, pages, referring sites, campaigns, browsers, systems and devices.

use duckdb::Connection;
use serde::Serialize;

use super::active::{self, Active, ActiveSpec};
use crate::store::{ts_param, StoreError};

/// Event names that count as page views: the tracker's, and the common spelling.
pub const PAGEVIEW_EVENTS: &str = "('pageview', 'page_view')";
pub const TOP: usize = 10;

/// The dimensions of the breakdown query, in its GROUPING SETS order.
const DIMENSIONS: [&str; 9] = [
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub key: String,
    pub events: u64,
    pub users: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Totals {
    pub events: u64,
    pub users: u64,
    pub pageviews: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub totals: Totals,
    pub active: Active,
    /// Page-view dimensions (routes, referrers, UTM) count `pageview` events; the rest
    /// count every event. `users` are distinct people.
    pub breakdowns: std::collections::BTreeMap<&'static str, Vec<Entry>>,
}

pub fn breakdown_sql() -> String {
    format!(
        "SELECT grouping(event, r, rd, us, um, uc, br, os, dv) AS g, \
           coalesce(event, r, rd, us, um, uc, br, os, dv) AS k, \
           count(*) AS n, count(DISTINCT visitor_id) AS u, count(*) FILTER (WHERE pv) AS views \
         FROM (SELECT visitor_id, event, pv, \
             CASE WHEN pv THEN route END AS r, CASE WHEN pv THEN referrer_domain END AS rd, \
             CASE WHEN pv THEN utm_source END AS us, CASE WHEN pv THEN utm_medium END AS um, \
             CASE WHEN pv THEN utm_campaign END AS uc, browser AS br, os, device AS dv \
           FROM (SELECT *, event IN {PAGEVIEW_EVENTS} AS pv FROM user_events \
                 WHERE created_at >= ? AND created_at < ? AND visitor_id IS NOT NULL)) \
         GROUP BY GROUPING SETS ((event), (r), (rd), (us), (um), (uc), (br), (os), (dv), ())"
    )
}

pub fn run_sync(conn: &Connection, spec: &ActiveSpec) -> Result<Overview, StoreError> {
    let mut totals = Totals::default();
    let mut breakdowns: std::collections::BTreeMap<&'static str, Vec<Entry>> =
        DIMENSIONS.iter().map(|d| (*d, Vec::new())).collect();
    {
        let mut stmt = conn.prepare(&breakdown_sql())?;
        let mut rows = stmt.query(duckdb::params![
            ts_param(spec.from_us),
            ts_param(spec.to_us)
        ])?;
        let all = (1i64 << DIMENSIONS.len()) - 1;
        while let Some(r) = rows.next()? {
            let g: i64 = r.get(0)?;
            let key: Option<String> = r.get(1)?;
            let events = r.get::<_, i64>(2)?.max(0) as u64;
            let users = r.get::<_, i64>(3)?.max(0) as u64;
            if g == all {
                totals = Totals {
                    events,
                    users,
                    pageviews: r.get::<_, i64>(4)?.max(0) as u64,
                };
                continue;
            }
            // The one grouped column has its bit clear; the first argument is the top bit.
            let Some(dim) = (0..DIMENSIONS.len())
                .find(|i| g & (1 << (DIMENSIONS.len() - 1 - i)) == 0)
                .map(|i| DIMENSIONS[i])
            else {
                continue;
            };
            let Some(key) = key else { continue };
            if let Some(list) = breakdowns.get_mut(dim) {
                list.push(Entry { key, events, users });
            }
        }
    }
    for list in breakdowns.values_mut() {
        list.sort_by(|a, b| {
            b.users
                .cmp(&a.users)
                .then(b.events.cmp(&a.events))
                .then_with(|| a.key.cmp(&b.key))
        });
        list.truncate(TOP);
    }
    let active = active::run_sync(conn, spec)?;
    Ok(Overview {
        totals,
        active,
        breakdowns,
    })
}
