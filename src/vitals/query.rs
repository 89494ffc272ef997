//! Reads over `performance_metrics`, newest report per metric instance only: percentiles,
//! ratings, the score, routes by device, histograms, the trend and the newest samples.
//! On DuckDB each read takes the exact path (`exact`) or, over long windows with many
//! samples, the roll-up path (`rolled`); on ClickHouse always the exact path's twin
//! (`clickhouse`). All answer in the shapes of `stats`; the engine is chosen here, above
//! them, so neither engine's module imports the other.

use duckdb::Connection;

use super::stats::{Groups, Histogram, Summary};
use super::{clickhouse, exact, rolled, rollup, Metric};
use crate::http::window::Window;
use crate::state::AppState;
use crate::store::{Store, StoreError};

pub use super::exact::Headline;
pub use super::filter::{Filter, Stat};

/// The web-vitals reads of one store: on ClickHouse from the rows; on DuckDB by the roll-up
/// path over windows holding more than `exact_max` samples it covers, else the exact path.
pub struct Reads {
    pub store: Store,
    pub exact_max: u64,
}

impl Reads {
    pub fn of(state: &AppState) -> Reads {
        Reads {
            store: state.store.clone(),
            exact_max: state.config.performance.exact_max_samples,
        }
    }

    /// Runs `rolled` (given where the roll-up ends) or `exact` on a read connection.
    async fn either<T: Send + 'static>(
        &self,
        window: Window,
        filter: Filter,
        rolled: impl FnOnce(&Connection, &Window, &Filter, i64) -> Result<T, StoreError>
            + Send
            + 'static,
        exact: impl FnOnce(&Connection, &Window, &Filter) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let exact_max = self.exact_max;
        self.store
            .query(move |conn| match rollup_end(conn, &window, exact_max)? {
                Some(done) => rolled(conn, &window, &filter, done),
                None => exact(conn, &window, &filter),
            })
            .await
    }

    pub async fn summary(&self, w: Window, f: Filter, stat: Stat) -> Result<Summary, StoreError> {
        if let Some(ch) = self.store.clickhouse() {
            return clickhouse::summary(ch, &w, &f, stat).await;
        }
        self.either(
            w,
            f,
            move |c, w, f, done| rolled::summary(c, w, f, stat, done),
            move |c, w, f| exact::summary(c, w, f, stat),
        )
        .await
    }

    pub async fn groups(&self, w: Window, f: Filter, stat: Stat) -> Result<Groups, StoreError> {
        if let Some(ch) = self.store.clickhouse() {
            return clickhouse::groups(ch, &w, &f, stat).await;
        }
        self.either(
            w,
            f,
            move |c, w, f, done| rolled::groups(c, w, f, stat, done),
            move |c, w, f| exact::groups(c, w, f, stat),
        )
        .await
    }

    pub async fn histogram(
        &self,
        w: Window,
        f: Filter,
        metric: Metric,
    ) -> Result<Histogram, StoreError> {
        if let Some(ch) = self.store.clickhouse() {
            return clickhouse::histogram(ch, &w, &f, metric).await;
        }
        self.either(
            w,
            f,
            move |c, w, f, done| rolled::histogram(c, w, f, metric, done),
            move |c, w, f| exact::histogram(c, w, f, metric),
        )
        .await
    }

    /// Each metric's p75 over `w`, for the dashboard's overview; whether it came from the
    /// roll-up (then within 2%, and counted over the window's whole first day).
    pub async fn headline(&self, w: Window) -> Result<(Headline, bool), StoreError> {
        if let Some(ch) = self.store.clickhouse() {
            return Ok((clickhouse::headline(ch, &w).await?, false));
        }
        self.either(
            w,
            Filter::default(),
            |c, w, _, done| Ok((rolled::headline(c, w, done)?, true)),
            |c, w, _| Ok((exact::headline(c, w)?, false)),
        )
        .await
    }
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
