//! The scaling reads on whichever engine the store runs: `query`'s DuckDB SQL or its
//! ClickHouse twin in `clickhouse`. The choice is made here, above both, so neither
//! engine's module imports the other; what they return is folded by the same code
//! (`recommend::assemble`, `predict::assemble`, `Window::report`).

use super::clickhouse;
use super::hpa::InstanceNow;
use super::query::{self, Fleet, HistoryStats, HostCapacity, SystemReport};
use crate::http::window::{Report, Window};
use crate::store::{Store, StoreError};

/// What a recommendation is made from: the fleet's latest samples and the raw
/// recommendations of the stabilisation window.
pub struct FleetNow {
    pub fleet: Fleet,
    pub instances: Vec<InstanceNow>,
    pub recent: Vec<u32>,
}

pub async fn fleet_now(
    store: &Store,
    now_us: i64,
    stale_us: i64,
    window_since_us: i64,
) -> Result<FleetNow, StoreError> {
    let ((fleet, instances), recent) = match store.clickhouse() {
        Some(ch) => (
            clickhouse::fleet_now(ch, now_us, stale_us).await?,
            clickhouse::recent_raw(ch, window_since_us).await?,
        ),
        None => {
            store
                .query(move |c| {
                    Ok((
                        query::fleet_now(c, now_us, stale_us)?,
                        query::recent_raw(c, window_since_us)?,
                    ))
                })
                .await?
        }
    };
    Ok(FleetNow {
        fleet,
        instances,
        recent,
    })
}

/// Hourly demand over `[from, to)` of the app fleet, or of the hosts when no app reported:
/// (the fleet, the first hour's start, one value per hour, NaN where none).
pub async fn demand(
    store: &Store,
    from_us: i64,
    to_us: i64,
) -> Result<(Fleet, i64, Vec<f64>), StoreError> {
    let mut fleet = Fleet::Apps;
    let mut rows = hourly_demand(store, fleet, from_us, to_us).await?;
    if rows.is_empty() {
        fleet = Fleet::Host;
        rows = hourly_demand(store, fleet, from_us, to_us).await?;
    }
    let (first, ys) = query::demand_series(from_us, to_us, &rows);
    Ok((fleet, first, ys))
}

async fn hourly_demand(
    store: &Store,
    fleet: Fleet,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, f64)>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::hourly_demand(ch, fleet, from_us, to_us).await,
        None => {
            store
                .query(move |c| query::hourly_demand(c, fleet, from_us, to_us))
                .await
        }
    }
}

/// This node's host over the last `days`. A DuckDB file holds only its own host's
/// samples; ClickHouse holds every node's, so it is asked for this node's by name.
pub async fn capacity(store: &Store, now_us: i64, days: i64) -> Result<HostCapacity, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::host_capacity(ch, &super::node_instance(), now_us, days).await,
        None => {
            store
                .query(move |c| query::host_capacity(c, now_us, days))
                .await
        }
    }
}

/// `GET /api/analytics/system`.
pub async fn system(
    store: &Store,
    w: Window,
    stale_after: u64,
) -> Result<SystemReport, StoreError> {
    let now_us = chrono::Utc::now().timestamp_micros();
    let stale_us = query::seconds_us(stale_after);
    match store.clickhouse() {
        Some(ch) => clickhouse::system_report(ch, &w, now_us, stale_us).await,
        None => {
            store
                .query(move |c| query::system_report(c, &w, now_us, stale_us))
                .await
        }
    }
}

/// `GET /api/scaling/history`.
pub async fn history(store: &Store, w: Window) -> Result<Report<HistoryStats>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::history(ch, &w).await,
        None => store.query(move |c| query::history(c, &w)).await,
    }
}
