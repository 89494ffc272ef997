//! The growth reads the handlers run, on whichever engine the store runs: the DuckDB
//! query modules' own functions, or their ClickHouse twins in `clickhouse`. The choice is
//! made here, above both, so neither engine's module imports the other.

use super::active::ActiveSpec;
use super::adoption::{self, Adoption, AdoptionSpec};
use super::clickhouse;
use super::funnel::{self, Funnel, FunnelSpec};
use super::overview::{self, Overview};
use super::profile::{self, Person};
use super::query::{self, ConversionSummary, EventSummary};
use super::retention::{self, Retention, RetentionSpec};
use crate::http::window::Window;
use crate::store::{Store, StoreError};

/// The overview's growth figures: totals and the events series.
pub async fn headline(store: &Store, window: Window) -> Result<query::Headline, StoreError> {
    match store.clickhouse() {
        Some(ch) => {
            let (t, series) = clickhouse::event_totals(ch, &window).await?;
            Ok(query::Headline {
                events: query::HeadlineTotals {
                    total: t.events,
                    users: t.users,
                    sessions: t.sessions,
                    conversions: t.conversions,
                },
                series,
                estimated: Vec::new(),
            })
        }
        None => query::headline(store, window).await,
    }
}

pub async fn events(store: &Store, window: Window) -> Result<EventSummary, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::events(ch, &window).await,
        None => query::events(store, window).await,
    }
}

pub async fn conversions(store: &Store, window: Window) -> Result<ConversionSummary, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::conversions(ch, &window).await,
        None => query::conversions(store, window).await,
    }
}

pub async fn funnel(store: &Store, spec: FunnelSpec) -> Result<Funnel, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::funnel(ch, &spec).await,
        None => funnel::run(store, spec).await,
    }
}

pub async fn retention(store: &Store, spec: RetentionSpec) -> Result<Retention, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::retention(ch, &spec).await,
        None => retention::run(store, spec).await,
    }
}

pub async fn adoption(store: &Store, spec: AdoptionSpec) -> Result<Adoption, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::adoption(ch, &spec).await,
        None => {
            store
                .query(move |conn| adoption::run_sync(conn, &spec))
                .await
        }
    }
}

pub async fn overview(store: &Store, spec: ActiveSpec) -> Result<Overview, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::overview(ch, &spec).await,
        None => {
            store
                .query(move |conn| overview::run_sync(conn, &spec))
                .await
        }
    }
}

/// A named funnel's steps, in the order people reached them in the window.
pub async fn funnel_steps(
    store: &Store,
    name: String,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<String>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::funnel_steps(ch, &name, from_us, to_us).await,
        None => {
            store
                .query(move |conn| query::funnel_steps(conn, &name, from_us, to_us))
                .await
        }
    }
}

/// One person's profile and newest events; `None` when nothing is known about `id`.
pub async fn person(store: &Store, id: String, limit: u32) -> Result<Option<Person>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::person(ch, &id, limit).await,
        None => {
            store
                .query(move |conn| profile::run_sync(conn, &id, limit))
                .await
        }
    }
}
