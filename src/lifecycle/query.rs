//! What the data takes: the file, each stream's rows, age and size, the retention in force.

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::RetentionConfig;
use crate::store::{free_bytes, Store, StoreError, Stream};

/// One stream in `GET /api/admin/storage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamSize {
    pub stream: String,
    pub table: String,
    pub rows: u64,
    /// Bytes of the file's blocks this table's columns use (shared blocks counted whole);
    /// on ClickHouse, the bytes on disk of its parts on every server.
    pub bytes: u64,
    /// The oldest row's age column (RFC 3339), if any.
    pub oldest: Option<String>,
    /// Days kept; 0 keeps everything.
    pub retention_days: u32,
}

/// `GET /api/admin/storage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Storage {
    pub path: String,
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub free_bytes: Option<u64>,
    /// Whether ingest is refused for lack of space right now.
    pub disk_full: bool,
    pub streams: Vec<StreamSize>,
    /// Days of the web-vitals daily roll-up kept; 0 keeps everything.
    pub rollup_retention_days: u32,
}

pub async fn storage(store: &Store, cfg: &RetentionConfig) -> Result<Storage, StoreError> {
    let path = store.path().to_path_buf();
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let wal_bytes = std::fs::metadata(path.with_extension("duckdb.wal")).map_or(0, |m| m.len());
    let dir = path.parent().map(std::path::Path::to_path_buf);
    let sizes = store
        .query(|c| {
            let block: i64 = c
                .query_row("SELECT block_size FROM pragma_database_size()", [], |r| {
                    r.get(0)
                })
                .unwrap_or(262_144);
            Stream::ALL
                .iter()
                .map(|&s| -> Result<_, StoreError> {
                    let (table, age) = (s.table(), s.age_column());
                    let (rows, oldest): (i64, Option<i64>) = c.query_row(
                        &format!("SELECT count(*), epoch_us(min({age})::TIMESTAMP) FROM {table}"),
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    let blocks: i64 = c.query_row(
                        &format!(
                            "SELECT count(DISTINCT block_id) FROM pragma_storage_info('{table}') \
                             WHERE persistent AND block_id >= 0"
                        ),
                        [],
                        |r| r.get(0),
                    )?;
                    Ok((s, rows as u64, (blocks * block) as u64, oldest))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    let mut sizes = sizes;
    // On ClickHouse the streams live in the cluster: their figures come from there, the
    // same from every node (the node's file keeps only what is its own).
    if let Some(ch) = store.clickhouse() {
        let held: Vec<&str> = sizes
            .iter()
            .filter_map(|(s, ..)| crate::store::clickhouse::table_of_stream(*s))
            .collect();
        let cluster = ch.sizes(&held).await.map_err(StoreError::ClickHouse)?;
        for (s, rows, bytes, oldest) in &mut sizes {
            let table = crate::store::clickhouse::table_of_stream(*s);
            if let Some(size) = table.and_then(|t| cluster.get(t)) {
                (*rows, *bytes, *oldest) = (size.rows, size.bytes, size.oldest_us);
            }
        }
    }
    Ok(Storage {
        path: path.display().to_string(),
        file_bytes,
        wal_bytes,
        free_bytes: dir.and_then(|d| free_bytes(&d).ok()),
        disk_full: store.disk_full(),
        streams: sizes
            .into_iter()
            .map(|(s, rows, bytes, oldest)| StreamSize {
                stream: s.name().into(),
                table: s.table().into(),
                rows,
                bytes,
                oldest: oldest
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                retention_days: super::retention::days(cfg, s),
            })
            .collect(),
        rollup_retention_days: cfg.rollup_days,
    })
}
