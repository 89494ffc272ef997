//! Integration tests: the real binary on a random port with a temp data dir, over HTTP.

mod ai;
mod ai_mock;
mod ai_sdk;
mod alerts;
mod browser;
mod cli;
mod clickhouse;
mod clickhouse_metrics;
mod clickhouse_servers;
mod clickhouse_shared;
mod clickhouse_vitals;
mod contract;
mod dashboard;
mod dbperf;
mod durability;
mod errors;
mod event_time;
mod growth;
mod growth_props;
mod growth_rollups;
mod helpers;
mod ingest;
mod lifecycle;
mod ops;
mod scaling;
mod vitals;
