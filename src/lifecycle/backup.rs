//! Online backup and restore. A backup is one read transaction (a consistent snapshot:
//! everything committed before it began, nothing after) copied table by table to Parquet
//! in `<dir>/<name>.partial/`, with a manifest of row counts, then renamed to
//! `<dir>/<name>/`: a folder without `.partial` is always complete. Restore builds a new
//! data dir from one and checks every table's count against the manifest.
//!
//! On ClickHouse the node's file holds only what is the node's own (alerts, errors, the AI
//! cache); the shared tables are backed up by ClickHouse itself: `FREEZE WITH NAME <the
//! backup's name>` on every server (`store::clickhouse::freeze`), recorded in the manifest
//! as what was frozen where. Restoring those is ClickHouse's `ATTACH PARTITION` (README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::export::sql_path;
use crate::store::clickhouse::FrozenServer;
use crate::store::{latest_schema, Store, StoreError, StoreOptions};

pub const MANIFEST: &str = "manifest.json";
/// Small files of the data dir a restored server needs to behave the same (the IP salt
/// keeps hashed IPs stable; the keys keep apps and scripts working).
const SECRETS: &[&str] = &["admin_token", "ip_salt", "gateway_key"];
/// Names of scheduled backups start with this, so only they are rotated.
const AUTO: &str = "auto-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

/// What a backup holds: written last, so its presence means the folder is complete.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    pub name: String,
    /// RFC 3339, when the snapshot was taken.
    pub created_at: String,
    pub schema_version: i64,
    pub growth_stack_version: String,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    pub scheduled: bool,
    /// On ClickHouse: what each server froze.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseBackup>,
}

/// The ClickHouse part of a backup: `ALTER TABLE ... FREEZE WITH NAME` on each server of
/// `clickhouse.url`, which hard-links the tables' parts under the server's own
/// `shadow/<name>/`. This node cannot see those disks: this is what it asked for and
/// what each server answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClickHouseBackup {
    /// The folder name under each server's `shadow/`.
    pub name: String,
    pub database: String,
    /// Every server froze every table it holds.
    pub complete: bool,
    pub servers: Vec<ServerFreeze>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerFreeze {
    /// Its `clickhouse.url`.
    pub server: String,
    /// `<server path>/shadow/<name>/` on that server's disk.
    pub shadow: Option<String>,
    pub tables: Vec<TableFreeze>,
    /// Why this server froze nothing, or not every table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TableFreeze {
    /// The server's own table (`*_local` under Distributed tables).
    pub table: String,
    /// Rows and parts counted just before the freeze.
    pub rows: u64,
    pub parts: u64,
}

impl ClickHouseBackup {
    fn of(name: &str, database: &str, servers: Vec<FrozenServer>) -> ClickHouseBackup {
        ClickHouseBackup {
            name: name.to_string(),
            database: database.to_string(),
            complete: servers.iter().all(|s| s.error.is_none()),
            servers: servers
                .into_iter()
                .map(|s| ServerFreeze {
                    server: s.server,
                    shadow: s.shadow,
                    tables: s
                        .tables
                        .into_iter()
                        .map(|t| TableFreeze {
                            table: t.table,
                            rows: t.rows,
                            parts: t.parts,
                        })
                        .collect(),
                    error: s.error,
                })
                .collect(),
        }
    }
}

/// A finished backup, as `POST /api/admin/backup` and the list answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupInfo {
    pub path: String,
    pub name: String,
    pub created_at: String,
    pub rows: u64,
    pub bytes: u64,
    pub scheduled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// On ClickHouse: what each server froze (`rows` and `bytes` are this node's file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseBackup>,
}

/// One backup at a time; a second caller waits for the first.
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes a backup into a new folder under `dir`, copying the secrets of `data_dir`.
pub async fn backup(
    store: &Store,
    dir: &Path,
    data_dir: &Path,
    scheduled: bool,
) -> Result<BackupInfo, BackupError> {
    let _one = RUNNING.lock().await;
    let started = std::time::Instant::now();
    let now = chrono::Utc::now();
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let name = if scheduled {
        format!("{AUTO}{stamp}")
    } else {
        stamp
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let partial = dir.join(format!("{name}.partial"));
    std::fs::create_dir(&partial).map_err(io("create", &partial))?;
    let target = partial.clone();
    let snapshot = store
        .query(move |c| {
            c.execute_batch("BEGIN TRANSACTION")?;
            let result = copy_tables(c, &target);
            let _ = c.execute_batch("COMMIT");
            result
        })
        .await;
    let tables = match snapshot {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e.into());
        }
    };
    for secret in SECRETS {
        let from = data_dir.join(secret);
        if from.exists() {
            std::fs::copy(&from, partial.join(secret)).map_err(io("copy", &from))?;
        }
    }
    // After the file's snapshot: the freeze is a moment later, not the same instant.
    let clickhouse = match store.clickhouse() {
        Some(ch) => {
            // ClickHouse escapes the folder name for its disk (`.` becomes `%2E`): the
            // backup's name with `_` for anything else, so the folder is found by its name.
            let folder: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let frozen = ch.freeze(&folder).await;
            let b = ClickHouseBackup::of(&folder, ch.database(), frozen);
            if !b.complete {
                tracing::warn!(name = %name, "ClickHouse backup incomplete: a server did not freeze");
            }
            Some(b)
        }
        None => None,
    };
    let manifest = Manifest {
        name: name.clone(),
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        schema_version: latest_schema(),
        growth_stack_version: env!("CARGO_PKG_VERSION").to_string(),
        tables,
        scheduled,
        clickhouse,
    };
    write_manifest(&partial, &manifest)?;
    let done = dir.join(&name);
    std::fs::rename(&partial, &done).map_err(io("rename", &partial))?;
    let mut out = info(&done, &manifest);
    out.took_ms = Some(started.elapsed().as_millis() as u64);
    Ok(out)
}

/// Copies every table to `<dir>/<table>.parquet` inside the caller's transaction.
fn copy_tables(c: &duckdb::Connection, dir: &Path) -> Result<BTreeMap<String, u64>, StoreError> {
    let names = table_names(c)?;
    let mut tables = BTreeMap::new();
    for name in names {
        let file = dir.join(format!("{name}.parquet"));
        // The name comes from the catalog; quoted as an identifier all the same.
        let ident = format!("\"{}\"", name.replace('"', "\"\""));
        let rows: i64 = c.query_row(&format!("SELECT count(*) FROM {ident}"), [], |r| r.get(0))?;
        c.execute(
            &format!(
                "COPY {ident} TO {} (FORMAT parquet, COMPRESSION zstd)",
                sql_path(&file)
            ),
            [],
        )?;
        tables.insert(name, rows as u64);
    }
    Ok(tables)
}

/// The database's own tables (not views), by name.
fn table_names(c: &duckdb::Connection) -> duckdb::Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT table_name FROM duckdb_tables() \
         WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary \
         ORDER BY table_name",
    )?;
    let names = stmt
        .query_map([], |r| r.get(0))?
        .collect::<duckdb::Result<Vec<String>>>()?;
    Ok(names)
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(m).map_err(|e| BackupError::Refused(e.to_string()))?;
    std::fs::write(&path, text).map_err(io("write", &path))?;
    let f = std::fs::File::open(&path).map_err(io("open", &path))?;
    f.sync_all().map_err(io("sync", &path))
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    serde_json::from_str(&text).map_err(|e| {
        BackupError::Refused(format!("{} is not a backup manifest: {e}", path.display()))
    })
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn info(dir: &Path, m: &Manifest) -> BackupInfo {
    BackupInfo {
        path: dir.display().to_string(),
        name: m.name.clone(),
        created_at: m.created_at.clone(),
        rows: m.tables.values().sum(),
        bytes: dir_bytes(dir),
        scheduled: m.scheduled,
        took_ms: None,
        clickhouse: m.clickhouse.clone(),
    }
}

/// Finished backups under `dir`, newest first.
pub fn list(dir: &Path) -> Vec<BackupInfo> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<BackupInfo> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.to_string_lossy().ends_with(".partial"))
        .filter_map(|p| read_manifest(&p).ok().map(|m| info(&p, &m)))
        .collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    out
}

/// Deletes scheduled backups beyond the newest `keep` (and leftovers of failed ones).
pub fn rotate(dir: &Path, keep: usize) {
    let scheduled: Vec<BackupInfo> = list(dir).into_iter().filter(|b| b.scheduled).collect();
    for old in scheduled.iter().skip(keep) {
        if let Err(e) = std::fs::remove_dir_all(&old.path) {
            tracing::warn!(error = %e, path = %old.path, "cannot delete an old backup");
        }
    }
}

/// What a restore did: rows per table, checked against the manifest.
#[derive(Debug)]
pub struct Restored {
    pub db_path: PathBuf,
    pub tables: BTreeMap<String, u64>,
}

/// Builds a working data dir in `data_dir` from the backup in `from`. A data dir that
/// holds anything is refused unless `force` (then its database is replaced). The new file
/// is built beside the final one and renamed only once every count matches.
pub async fn restore(
    from: &Path,
    data_dir: &Path,
    opts: &StoreOptions,
    force: bool,
) -> Result<Restored, BackupError> {
    let manifest = read_manifest(from)?;
    if manifest.schema_version > latest_schema() {
        return Err(BackupError::Refused(format!(
            "this backup was written by a newer growth-stack (schema {}, this binary knows up to {}); \
             restore it with that version or newer",
            manifest.schema_version,
            latest_schema()
        )));
    }
    let occupied = std::fs::read_dir(data_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied && !force {
        return Err(BackupError::Refused(format!(
            "{} is not empty; restore into a new folder, or pass --force to replace its database",
            data_dir.display()
        )));
    }
    std::fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
    let db_path = data_dir.join("growth.duckdb");
    let building = data_dir.join("growth.duckdb.restoring");
    for stale in [
        building.clone(),
        data_dir.join("growth.duckdb.restoring.wal"),
    ] {
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(io("remove", &stale))?;
        }
    }
    let store = {
        let (path, opts) = (building.clone(), opts.clone());
        tokio::task::spawn_blocking(move || Store::open(&path, &opts))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??
    };
    let dir = from.to_path_buf();
    let expected = manifest.tables.clone();
    let loaded = store
        .maintain(move |c| Ok(load_tables(c, &dir, &expected)))
        .await;
    store.close().await?;
    drop(store);
    let tables = match loaded.map_err(BackupError::from).and_then(|r| r) {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&building);
            return Err(e);
        }
    };
    for old in [db_path.clone(), data_dir.join("growth.duckdb.wal")] {
        if old.exists() {
            std::fs::remove_file(&old).map_err(io("remove", &old))?;
        }
    }
    // The replaced file's ingest log holds writes of that file, not of the backup.
    let log = crate::store::ingest_log_dir(&db_path);
    if log.exists() {
        std::fs::remove_dir_all(&log).map_err(io("remove", &log))?;
    }
    std::fs::rename(&building, &db_path).map_err(io("rename", &building))?;
    for secret in SECRETS {
        let src = from.join(secret);
        let dst = data_dir.join(secret);
        if src.exists() && (force || !dst.exists()) {
            std::fs::copy(&src, &dst).map_err(io("copy", &src))?;
        }
    }
    Ok(Restored { db_path, tables })
}

/// Replaces each table's rows with the backup's, in one transaction, then compares counts.
fn load_tables(
    c: &duckdb::Connection,
    dir: &Path,
    expected: &BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u64>, BackupError> {
    let present = table_names(c).map_err(StoreError::from)?;
    let run = |sql: &str| c.execute_batch(sql).map_err(StoreError::from);
    run("BEGIN TRANSACTION")?;
    let mut counts = BTreeMap::new();
    match load_each(c, dir, expected, &present, &mut counts) {
        Ok(()) => {
            run("COMMIT")?;
            Ok(counts)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn load_each(
    c: &duckdb::Connection,
    dir: &Path,
    expected: &BTreeMap<String, u64>,
    present: &[String],
    counts: &mut BTreeMap<String, u64>,
) -> Result<(), BackupError> {
    let run = |sql: &str| c.execute_batch(sql).map_err(StoreError::from);
    for (table, &rows) in expected {
        // The restored file keeps its own record of migrations.
        if table == "schema_migrations" {
            continue;
        }
        if !present.contains(table) {
            return Err(BackupError::Refused(format!(
                "the backup has a table {table} this growth-stack does not know"
            )));
        }
        let ident = format!("\"{}\"", table.replace('"', "\"\""));
        let file = dir.join(format!("{table}.parquet"));
        run(&format!("DELETE FROM {ident}"))?;
        run(&format!(
            "INSERT INTO {ident} BY NAME SELECT * FROM read_parquet({})",
            sql_path(&file)
        ))?;
        let n: i64 = c
            .query_row(&format!("SELECT count(*) FROM {ident}"), [], |r| r.get(0))
            .map_err(StoreError::from)?;
        if n as u64 != rows {
            return Err(BackupError::Refused(format!(
                "table {table}: {n} rows restored, the manifest says {rows}"
            )));
        }
        counts.insert(table.clone(), rows);
    }
    Ok(())
}

/// Scheduled backups every `hours`, keeping the newest `keep`.
pub fn spawn(store: &Store, dir: PathBuf, data_dir: PathBuf, hours: u32, keep: u32) {
    if hours == 0 {
        return;
    }
    let store = store.clone();
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(u64::from(hours) * 3600);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            match backup(&store, &dir, &data_dir, true).await {
                Ok(b) => {
                    tracing::info!(path = %b.path, rows = b.rows, "scheduled backup written");
                    rotate(&dir, keep as usize);
                }
                Err(BackupError::Store(StoreError::Closed)) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled backup failed; retrying at the next interval")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &Path, name: &str, created_at: &str, scheduled: bool) {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let m = Manifest {
            name: name.into(),
            created_at: created_at.into(),
            schema_version: 1,
            growth_stack_version: "0".into(),
            tables: BTreeMap::from([("user_events".to_string(), 3)]),
            scheduled,
            clickhouse: None,
        };
        write_manifest(&d, &m).unwrap();
    }

    #[test]
    fn rotation_keeps_the_newest_scheduled_and_every_manual_one() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), "auto-1", "2026-01-01T00:00:00.000Z", true);
        fake(dir.path(), "auto-2", "2026-01-02T00:00:00.000Z", true);
        fake(dir.path(), "auto-3", "2026-01-03T00:00:00.000Z", true);
        fake(dir.path(), "manual", "2025-12-01T00:00:00.000Z", false);
        // Unfinished: never listed.
        std::fs::create_dir_all(dir.path().join("x.partial")).unwrap();
        assert_eq!(list(dir.path()).len(), 4);
        rotate(dir.path(), 2);
        let names: Vec<String> = list(dir.path()).into_iter().map(|b| b.name).collect();
        assert_eq!(names, ["auto-3", "auto-2", "manual"]);
        assert_eq!(list(dir.path())[0].rows, 3);
    }
}
