//! growth-stack: web vitals, AI-call metrics, query timings and product analytics in one
//! binary, stored in one embedded DuckDB file.

pub mod ai;
pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod dbperf;
mod edge;
pub mod error;
pub mod growth;
pub mod http;
pub mod lifecycle;
pub mod ops;
pub mod scaling;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod vitals;
pub mod web;
