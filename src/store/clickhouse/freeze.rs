//! Backups of what ClickHouse holds, by ClickHouse's own mechanism: `ALTER TABLE ... FREEZE
//! WITH NAME` on every server of `clickhouse.url` (18.16 and current releases), which
//! hard-links each table's active parts under the server's `shadow/<name>/`: no copy, and
//! ingest goes on. A node cannot see the servers' disks, so it reports what it asked for:
//! per server, each table with its rows and parts counted just before its freeze, and the
//! folder the links went to (from the parts' own paths).

use super::{is_identifier, quote, ChError, ClickHouse};

/// One table frozen on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenTable {
    /// The server's table (`*_local` under Distributed tables).
    pub table: String,
    pub rows: u64,
    pub parts: u64,
}

/// What one server froze.
#[derive(Debug, Clone)]
pub struct FrozenServer {
    pub server: String,
    /// `<server path>/shadow/<name>/`, when a table's part path showed the server's path.
    pub shadow: Option<String>,
    pub tables: Vec<FrozenTable>,
    /// Why the server froze nothing, or not every table.
    pub error: Option<String>,
}

impl ClickHouse {
    /// Freezes every MergeTree table of the database that holds parts, on each server of
    /// `clickhouse.url` in turn, into `shadow/<name>/`. A server that fails is reported
    /// with its error; the others are frozen all the same.
    pub async fn freeze(&self, name: &str) -> Vec<FrozenServer> {
        let mut out = Vec::new();
        for (at, url) in self.client.urls().iter().enumerate() {
            let mut server = FrozenServer {
                server: url.clone(),
                shadow: None,
                tables: Vec::new(),
                error: None,
            };
            if let Err(e) = self.freeze_on(at, name, &mut server).await {
                server.error = Some(e.to_string());
            }
            out.push(server);
        }
        out
    }

    async fn freeze_on(
        &self,
        at: usize,
        name: &str,
        out: &mut FrozenServer,
    ) -> Result<(), ChError> {
        let db = &self.database;
        let tables = self.parts_on(at).await?;
        out.shadow = tables.iter().find_map(|t| shadow_dir(&t.path, db, name));
        for t in tables {
            if !is_identifier(&t.table) {
                return Err(ChError::Decode(format!(
                    "table {:?} is not one growth-stack made; not frozen",
                    t.table
                )));
            }
            self.client
                .execute_on(
                    at,
                    &format!(
                        "ALTER TABLE {db}.{} FREEZE WITH NAME {}",
                        t.table,
                        quote(name)
                    ),
                )
                .await?;
            out.tables.push(FrozenTable {
                table: t.table,
                rows: t.rows,
                parts: t.parts,
            });
        }
        Ok(())
    }
}

/// The server's `shadow/<name>/` from one of its part paths: `<root>data/<db>/<table>/<part>/`
/// (18.16, Ordinary databases) or `<root>store/<xyz>/<uuid>/<part>/` (Atomic databases).
fn shadow_dir(part_path: &str, db: &str, name: &str) -> Option<String> {
    let cut = part_path
        .find(&format!("/data/{db}/"))
        .or_else(|| part_path.find("/store/"))?;
    Some(format!("{}shadow/{name}/", &part_path[..=cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shadow_folder_is_beside_the_data() {
        assert_eq!(
            shadow_dir(
                "/var/lib/clickhouse/data/growth/user_events_local/202612_1_1_0/",
                "growth",
                "b1"
            )
            .as_deref(),
            Some("/var/lib/clickhouse/shadow/b1/")
        );
        assert_eq!(
            shadow_dir("/ch/store/abc/abc-123/all_1_1_0/", "growth", "b1").as_deref(),
            Some("/ch/shadow/b1/")
        );
        assert_eq!(shadow_dir("elsewhere", "growth", "b1"), None);
    }
}
