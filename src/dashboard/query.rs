//! The overview: each capability's headline over one window, read side by side.

use serde::Serialize;

use crate::http::window::{Window, WindowJson};
use crate::state::AppState;
use crate::store::StoreError;
use crate::{ai, dbperf, growth, scaling, vitals};

#[derive(Debug, Serialize)]
pub struct Overview {
    pub range: WindowJson,
    pub bucket_seconds: i64,
    /// `events` (totals), `series` (the events trend) and `estimated` (which figures of
    /// the whole overview are estimates).
    #[serde(flatten)]
    pub growth: growth::Headline,
    pub vitals: vitals::Headline,
    pub ai: ai::Headline,
    pub database: dbperf::Headline,
    /// The scaling recommendation now (the page shows it when it differs from the count).
    pub scaling: scaling::Headline,
}

pub async fn overview(state: &AppState, window: Window) -> Result<Overview, StoreError> {
    let (mut growth, (vitals, vitals_estimated), ai, database, scaling) = tokio::try_join!(
        growth::headline(state, window),
        vitals::headline(state, window),
        ai::headline(state, window),
        dbperf::headline(state, window),
        scaling::headline(state, window),
    )?;
    if vitals_estimated {
        growth.estimated.push("vitals");
    }
    growth
        .estimated
        .extend(ai.estimated.iter().chain(database.estimated));
    Ok(Overview {
        range: window.json(),
        bucket_seconds: window.bucket_seconds(),
        growth,
        vitals,
        ai,
        database,
        scaling,
    })
}
