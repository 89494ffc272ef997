//! Dashboard sessions: the random ids a login hands out, each valid for a week. Only a
//! SHA-256 of each id is stored, so sessions survive a restart or an upgrade while a copy
//! of the data holds none that could be used. On DuckDB they live in the file
//! (`dashboard_sessions`) and valid ones are remembered in memory, so a request costs no
//! query. On ClickHouse they live in the cluster's `dashboard_sessions` log, so a login on
//! one node is valid on every node; a node re-checks a remembered session every
//! `SHARED_RECHECK`, which bounds how long a logout made through another node takes to
//! reach it. Stored rather than signed stateless cookies, because a logout (or "log out
//! everywhere") must end a session before it expires.

use std::collections::HashMap;
use std::time::Duration;

use duckdb::params;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::clickhouse::{quote, ClickHouse};
use crate::store::{ts_param, Store, StoreError};

/// How long a session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// On ClickHouse: how long a node trusts what it remembers before asking the cluster again.
pub const SHARED_RECHECK: Duration = Duration::from_secs(5);

/// `kind` of a ClickHouse `dashboard_sessions` row.
const CREATED: u8 = 1;
const ENDED: u8 = 2;
/// Ends every session created before its `at` (`id_hash = '*'`).
const ALL_ENDED: u8 = 3;

pub struct Sessions {
    store: Store,
    /// Hash of a valid id -> (when it expires, when it was last confirmed), microseconds.
    live: Mutex<HashMap<String, (i64, i64)>>,
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[derive(Serialize)]
struct ChRow<'a> {
    id_hash: &'a str,
    kind: u8,
    at: i64,
    expires_at: i64,
}

impl Sessions {
    pub fn new(store: Store) -> Self {
        Sessions {
            store,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session, stored before its id is handed out, and returns the id.
    pub async fn create(&self) -> Result<String, StoreError> {
        let bytes: [u8; 32] = rand::random();
        let id = hex::encode(bytes);
        let key = hash(&id);
        let now = now_us();
        let expires = now + SESSION_TTL.as_micros() as i64;
        match self.store.clickhouse() {
            Some(ch) => log(ch, &key, CREATED, now, expires).await?,
            None => {
                let stored = key.clone();
                self.store
                    .maintain(move |c| {
                        // Expired rows are never read (lookups check `expires_at`); the daily
                        // retention job deletes them.
                        c.execute(
                            "INSERT INTO dashboard_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)",
                            params![stored, ts_param(now), ts_param(expires)],
                        )?;
                        Ok(())
                    })
                    .await?
            }
        }
        let mut live = self.live.lock();
        live.retain(|_, (exp, _)| *exp > now);
        live.insert(key, (expires, now));
        Ok(id)
    }

    /// Whether `id` is a session that has not expired or logged out. A store that cannot
    /// answer counts as "no": a session is never granted on an error.
    pub async fn is_valid(&self, id: &str) -> bool {
        if id.len() > 128 {
            return false;
        }
        let key = hash(id);
        let now = now_us();
        let shared = self.store.clickhouse();
        if let Some((exp, checked)) = self.live.lock().get(&key) {
            let fresh = shared.is_none() || now - checked < SHARED_RECHECK.as_micros() as i64;
            if fresh {
                return *exp > now;
            }
        }
        let found = match shared {
            Some(ch) => lookup_shared(ch, &key, now).await,
            None => lookup_file(&self.store, &key, now).await,
        };
        match found {
            Ok(Some(exp)) => {
                self.live.lock().insert(key, (exp, now));
                true
            }
            Ok(None) => {
                self.live.lock().remove(&key);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up a dashboard session");
                false
            }
        }
    }

    /// Logs one session out.
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let key = hash(id);
        self.live.lock().remove(&key);
        if let Some(ch) = self.store.clickhouse() {
            return log(ch, &key, ENDED, now_us(), 0).await;
        }
        self.store
            .maintain(move |c| {
                c.execute(
                    "DELETE FROM dashboard_sessions WHERE id_hash = ?",
                    params![key],
                )?;
                Ok(())
            })
            .await
    }

    /// Logs every session out; returns how many there were.
    pub async fn remove_all(&self) -> Result<u64, StoreError> {
        self.live.lock().clear();
        if let Some(ch) = self.store.clickhouse() {
            let now = now_us();
            let live = count_shared(ch, now).await?;
            log(ch, "*", ALL_ENDED, now, 0).await?;
            return Ok(live);
        }
        self.store
            .maintain(|c| Ok(c.execute("DELETE FROM dashboard_sessions", [])? as u64))
            .await
    }
}

async fn lookup_file(store: &Store, key: &str, now: i64) -> Result<Option<i64>, StoreError> {
    let lookup = key.to_string();
    store
        .query(move |c| {
            let mut stmt = c.prepare(
                "SELECT epoch_us(expires_at) FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?",
            )?;
            let mut rows = stmt.query(params![lookup, ts_param(now)])?;
            let found = match rows.next()? {
                Some(r) => Some(r.get(0)?),
                None => None,
            };
            Ok(found)
        })
        .await
}

async fn log(
    ch: &ClickHouse,
    key: &str,
    kind: u8,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let row = ChRow {
        id_hash: key,
        kind,
        at,
        expires_at,
    };
    ch.insert("dashboard_sessions", &[row])
        .await
        .map_err(StoreError::ClickHouse)
}

/// The session's expiry when it is live: created, not expired, not ended by itself or by
/// a later "every session" row.
async fn lookup_shared(ch: &ClickHouse, key: &str, now: i64) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Found {
        expires: i64,
        created: i64,
        ended: u64,
        all_ended: i64,
    }
    let k = quote(key);
    let sql = format!(
        "SELECT toInt64(maxIf(expires_at, kind = {CREATED} AND id_hash = {k})) AS expires, \
         toInt64(maxIf(at, kind = {CREATED} AND id_hash = {k})) AS created, \
         countIf(kind = {ENDED} AND id_hash = {k}) AS ended, \
         toInt64(maxIf(at, kind = {ALL_ENDED})) AS all_ended \
         FROM {} WHERE id_hash IN ({k}, '*')",
        ch.table("dashboard_sessions")
    );
    let f: Found = ch.row(&sql).await.map_err(StoreError::ClickHouse)?;
    let live = f.created > 0 && f.expires > now && f.ended == 0 && f.created > f.all_ended;
    Ok(live.then_some(f.expires))
}

/// How many sessions are live on the cluster now. Two plain reads: 18.16 refuses a
/// subquery over a Distributed table inside another (`distributed_product_mode`).
async fn count_shared(ch: &ClickHouse, now: i64) -> Result<u64, StoreError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let t = ch.table("dashboard_sessions");
    let all_ended: N = ch
        .row(&format!(
            "SELECT toInt64(max(at)) AS n FROM {t} WHERE id_hash = '*' AND kind = {ALL_ENDED}"
        ))
        .await
        .map_err(StoreError::ClickHouse)?;
    let live: N = ch
        .row(&format!(
            "SELECT toInt64(count()) AS n FROM (\
               SELECT id_hash, toInt64(maxIf(at, kind = {CREATED})) AS created, \
                 toInt64(maxIf(expires_at, kind = {CREATED})) AS expires, \
                 countIf(kind = {ENDED}) AS ended \
               FROM {t} WHERE id_hash != '*' GROUP BY id_hash) \
             WHERE created > {} AND expires > {now} AND ended = 0",
            all_ended.n.max(0)
        ))
        .await
        .map_err(StoreError::ClickHouse)?;
    Ok(live.n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_check_remove_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.duckdb");
        let store = Store::open(&path, &crate::store::StoreOptions::small()).unwrap();
        let s = Sessions::new(store.clone());
        let id = s.create().await.unwrap();
        let other = s.create().await.unwrap();
        assert_eq!(id.len(), 64);
        assert!(s.is_valid(&id).await);
        assert!(!s.is_valid("nope").await);
        s.remove(&id).await.unwrap();
        assert!(!s.is_valid(&id).await);
        store.close().await.unwrap();
        drop((s, store));
        let store = Store::open(&path, &crate::store::StoreOptions::small()).unwrap();
        let s = Sessions::new(store.clone());
        assert!(s.is_valid(&other).await, "a session survives a reopen");
        assert!(!s.is_valid(&id).await, "a logout too");
        assert_eq!(s.remove_all().await.unwrap(), 1);
        assert!(!s.is_valid(&other).await);
    }
}
