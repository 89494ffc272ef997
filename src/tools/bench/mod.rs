//! `growth-stack bench` and `bench-ai`: measurements in one run on one machine, against a
//! real server. The shared client, server process and percentiles are in `client`.

mod ai;
mod alerts;
mod client;
mod dbperf;
mod growth;
mod ingest;
mod lifecycle;
mod vitals;

pub use ai::run as run_ai;
pub use client::BenchError;

use crate::cli::BenchArgs;
use crate::config::Config;

/// `bench`: ingest by default; `--startup`, `--vitals`, `--database`, `--alerts`, `--growth` or
/// `--lifecycle` pick another bench.
pub async fn run(config: &Config, args: &BenchArgs) -> Result<(), BenchError> {
    if let Some(data_dir) = &args.startup {
        return ingest::startup(data_dir).await;
    }
    if args.vitals {
        return vitals::run(args).await;
    }
    if args.database {
        return dbperf::run(args).await;
    }
    if let Some(data_dir) = &args.alerts {
        return alerts::run(config, data_dir, args.user_rules, args.rounds).await;
    }
    if let Some(data_dir) = &args.lifecycle {
        return lifecycle::run(config, data_dir, args.beacons, args.concurrency).await;
    }
    if let Some(data_dir) = &args.growth {
        return growth::run(config, data_dir, args.reps).await;
    }
    ingest::run(args).await
}
