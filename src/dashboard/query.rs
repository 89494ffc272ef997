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
    /// `events` (totals) and `series` (the events trend).
    #[serde(flatten)]
    pub growth: growth::Headline,
    pub vitals: vitals::Headline,
    pub ai: ai::Headline,
    pub database: dbperf::Headline,
    /// The scaling recommendation now (the page shows it when it differs from the count).
    pub scaling: scaling::Headline,
}

pub async fn overview(state: &AppState, window: Window) -> Result<Overview, StoreError> {
    let (growth, vitals, ai, database, scaling) = tokio::try_join!(
        growth::headline(state, window),
        vitals::headline(state, window),
        ai::headline(state, window),
        dbperf::headline(state, window),
        scaling::headline(state, window),
    )?;
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
