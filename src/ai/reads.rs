//! The AI-call reads the handlers and the overview run, on whichever engine the store
//! runs: `query`'s DuckDB SQL or its ClickHouse twin in `clickhouse`. The choice is made
//! here, above both, so neither engine's module imports the other.

use super::clickhouse;
use super::query::{self, Headline, Summary};
use crate::http::Window;
use crate::store::{Store, StoreError};

pub async fn summary(store: &Store, window: Window) -> Result<Summary, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::summary(ch, &window).await,
        None => query::summary(store, window).await,
    }
}

pub async fn headline(store: &Store, window: Window) -> Result<Headline, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::headline(ch, &window).await,
        None => query::headline(store, window).await,
    }
}
