//! Reads over `performance_metrics`, newest report per metric instance only: percentiles,
//! ratings, the score, routes by device, histograms, the trend and the newest samples.
//! Each read takes the exact path (`exact`) or, over long windows with many samples, the
//! roll-up path (`rolled`); both answer in the shapes of `stats`.

use duckdb::Connection;

use super::stats::{Groups, Histogram, Summary};
use super::{exact, rolled, rollup, Metric};
use crate::http::window::Window;
use crate::store::{Store, StoreError};

pub use super::exact::Headline;
pub use super::filter::{Filter, Stat};

pub async fn summary(
    store: &Store,
    window: Window,
    filter: Filter,
    stat: Stat,
    exact_max: u64,
) -> Result<Summary, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => rolled::summary(conn, &window, &filter, stat, done),
            None => exact::summary(conn, &window, &filter, stat),
        })
        .await
}

pub async fn groups(
    store: &Store,
    window: Window,
    filter: Filter,
    stat: Stat,
    exact_max: u64,
) -> Result<Groups, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => rolled::groups(conn, &window, &filter, stat, done),
            None => exact::groups(conn, &window, &filter, stat),
        })
        .await
}

pub async fn histogram(
    store: &Store,
    window: Window,
    filter: Filter,
    metric: Metric,
    exact_max: u64,
) -> Result<Histogram, StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => rolled::histogram(conn, &window, &filter, metric, done),
            None => exact::histogram(conn, &window, &filter, metric),
        })
        .await
}

/// Each metric's p75 over `window`, for the dashboard's overview; whether it came from
/// the roll-up (then within 2%, and counted over the window's whole first day).
pub async fn headline(
    store: &Store,
    window: Window,
    exact_max: u64,
) -> Result<(Headline, bool), StoreError> {
    store
        .query(move |conn| match rollup_end(conn, &window, exact_max)? {
            Some(done) => Ok((rolled::headline(conn, &window, done)?, true)),
            None => Ok((exact::headline(conn, &window)?, false)),
        })
        .await
}

/// Where the roll-up ends, when `w` holds more than `exact_max` samples it covers: then
/// reads use it; otherwise they compute exactly from the rows.
fn rollup_end(conn: &Connection, w: &Window, exact_max: u64) -> Result<Option<i64>, StoreError> {
    let Some(done) = rollup::done_until(conn)? else {
        return Ok(None);
    };
    if done <= w.from_us() - 86_400_000_000 {
        return Ok(None);
    }
    Ok((rollup::samples(conn, w, done)? > exact_max).then_some(done))
}
