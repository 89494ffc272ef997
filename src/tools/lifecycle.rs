//! `export`, `import`, `restore` and `migrate`: the data tools for a stopped server. They open the
//! data dir the config names, as the server would, and use the lifecycle capability's face.

use std::path::Path;

use crate::app;
use crate::cli::{ExportArgs, ImportArgs, MigrateArgs, RestoreArgs};
use crate::config::Config;
use crate::http::params::{Instant, Range};
use crate::lifecycle::{self, Format, Span};
use crate::store::clickhouse::{copy, ClickHouse};
use crate::store::Stream;

type Error = Box<dyn std::error::Error>;

fn format_of(given: Option<&str>, path: &Path) -> Result<Format, Error> {
    match given {
        Some(f) => Ok(f.parse::<Format>()?),
        None => Format::from_path(path).ok_or_else(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format parquet|csv|jsonl",
                path.display()
            )
            .into()
        }),
    }
}

fn span(args: &ExportArgs) -> Result<Span, Error> {
    let now = chrono::Utc::now();
    let to = args.to.as_deref().map(str::parse::<Instant>).transpose()?;
    let from = args
        .from
        .as_deref()
        .map(str::parse::<Instant>)
        .transpose()?;
    let range = args.range.as_deref().map(str::parse::<Range>).transpose()?;
    let to = to.map(|t| t.0);
    let from = match (from, range) {
        (Some(f), _) => Some(f.0),
        (None, Some(r)) => Some(to.unwrap_or(now) - r.0),
        (None, None) => None,
    };
    Ok(Span {
        from_us: from.map(|t| t.timestamp_micros()),
        to_us: to.map(|t| t.timestamp_micros()),
    })
}

pub async fn export(config: &Config, args: &ExportArgs) -> Result<(), Error> {
    let stream: Stream = args.stream.parse()?;
    let format = match &args.format {
        Some(f) => f.parse::<Format>()?,
        None => Format::from_path(&args.out).unwrap_or(Format::Parquet),
    };
    let span = span(args)?;
    let store = app::open_store(config).await?;
    let started = std::time::Instant::now();
    let result = lifecycle::export_to(&store, stream, format, span, &args.out).await;
    store.close().await?;
    let rows = result?;
    println!(
        "exported {rows} {} rows to {} ({}) in {:.1} s",
        stream.name(),
        args.out.display(),
        format.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn import(config: &Config, args: &ImportArgs) -> Result<(), Error> {
    let stream: Stream = args.stream.parse()?;
    let format = format_of(args.format.as_deref(), &args.file)?;
    if !args.file.is_file() {
        return Err(format!("{} is not a file", args.file.display()).into());
    }
    let store = app::open_store(config).await?;
    let result = lifecycle::export::import_from(&store, stream, format, &args.file).await;
    store.close().await?;
    let rows = result?;
    println!(
        "imported {rows} {} rows from {}",
        stream.name(),
        args.file.display()
    );
    Ok(())
}

pub async fn restore(config: &Config, args: &RestoreArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let restored = lifecycle::backup::restore(
        &args.path,
        &config.server.data_dir,
        &app::store_options(config),
        args.force,
    )
    .await?;
    for (table, rows) in &restored.tables {
        println!("{table:<32} {rows:>12} rows");
    }
    println!(
        "restored {} into {} in {:.1} s; every table's count matches the backup's manifest",
        args.path.display(),
        restored.db_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `migrate --to-clickhouse URL`: the file's events and conversions into ClickHouse.
pub async fn migrate(config: &Config, args: &MigrateArgs) -> Result<(), Error> {
    let mut cfg = config.clickhouse.clone();
    cfg.url = args
        .to_clickhouse
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if cfg.url.is_empty() {
        return Err("--to-clickhouse needs the URL of a ClickHouse HTTP interface".into());
    }
    let ch = ClickHouse::connect(&cfg).await?;
    let store = app::open_store(config).await?;
    let started = std::time::Instant::now();
    let result = copy::from_duckdb(&store, &ch).await;
    store.close().await?;
    for c in result? {
        println!(
            "{:<12} {:>12} rows in the file: {:>12} copied now, {:>12} already in ClickHouse; it holds {} over those hours",
            c.table, c.rows, c.copied, c.already, c.in_clickhouse
        );
    }
    println!(
        "migrated {} into ClickHouse database {} in {:.1} s; every hour's count checked",
        config.server.data_dir.display(),
        ch.database(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
