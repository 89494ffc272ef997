//! The alert reads on whichever engine the store runs: the DuckDB SQL (`errors`,
//! `measures`) or its ClickHouse twin (`clickhouse`). The choice is made here, above both,
//! so neither engine's module imports the other.

use std::collections::HashMap;

use super::clickhouse;
use super::errors::{self, TopErrors};
use super::measures::{self, Key, Readings, Stats};
use crate::http::Window;
use crate::store::{Store, StoreError};

pub async fn top_errors(store: &Store, w: Window) -> Result<TopErrors, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::top_errors(ch, &w).await,
        None => errors::top(store, w).await,
    }
}

/// Every key's measure, once each.
pub async fn measure(
    store: &Store,
    keys: Vec<Key>,
    slow_ms: f64,
    readings: Readings,
) -> Result<HashMap<Key, Vec<Stats>>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::run(ch, &keys, slow_ms, readings).await,
        None => {
            store
                .query(move |c| measures::run(c, &keys, slow_ms, readings))
                .await
        }
    }
}
