//! Dashboard sessions: the random ids a login hands out, each valid for a week. Only a
//! SHA-256 of each id is stored (`dashboard_sessions`), so sessions survive a restart or an
//! upgrade while a copy of the file holds none that could be used; valid ones are also
//! remembered in memory so a request costs no query.

use std::collections::HashMap;
use std::time::Duration;

use duckdb::params;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::store::{ts_param, Store, StoreError};

/// How long a session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Sessions {
    store: Store,
    /// Hash of a valid id -> when it expires (microseconds since the epoch).
    live: Mutex<HashMap<String, i64>>,
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
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
            .await?;
        let mut live = self.live.lock();
        live.retain(|_, exp| *exp > now);
        live.insert(key, expires);
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
        if let Some(exp) = self.live.lock().get(&key) {
            return *exp > now;
        }
        let lookup = key.clone();
        let found: Result<Option<i64>, StoreError> = self
            .store
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
            .await;
        match found {
            Ok(Some(exp)) => {
                self.live.lock().insert(key, exp);
                true
            }
            Ok(None) => false,
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
        self.store
            .maintain(|c| Ok(c.execute("DELETE FROM dashboard_sessions", [])? as u64))
            .await
    }
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
