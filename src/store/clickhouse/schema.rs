//! Versioned ClickHouse schema: the files of `migrations/clickhouse/`, applied in order and
//! recorded in `schema_migrations` on each server. Safe when nodes start together: every
//! statement is IF NOT EXISTS (a lost race's "already exists" counts as done) and the
//! versions table keeps one row per version whoever wrote it first.

use super::client::ChError;
use super::ClickHouse;
use crate::config::ClickHouseConfig;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    /// Tables of this migration that a cluster reads and writes through `Distributed`,
    /// with their sharding key.
    pub distributed: &'static [(&'static str, &'static str)],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_streams",
        sql: include_str!("../../../migrations/clickhouse/0001_streams.sql"),
        distributed: &[
            ("user_events", "cityHash64(visitor_id)"),
            ("conversions", "cityHash64(visitor_id)"),
        ],
    },
    Migration {
        version: 2,
        name: "0002_vitals",
        sql: include_str!("../../../migrations/clickhouse/0002_vitals.sql"),
        // By metric instance: a re-report lands on the shard of the report it replaces.
        distributed: &[("performance_metrics", "cityHash64(ifNull(metric_id, id))")],
    },
    // Calls and timings are not per person: no read needs one key's rows on one shard
    // (every grouping merges on the initiator), so the key only has to spread them
    // evenly. A hash of the row id does that as rand() would, and a batch that is sent
    // again splits into the same block per shard, which replicated tables deduplicate.
    Migration {
        version: 3,
        name: "0003_metrics",
        sql: include_str!("../../../migrations/clickhouse/0003_metrics.sql"),
        distributed: &[
            ("ai_performance_metrics", "cityHash64(id)"),
            ("database_performance_metrics", "cityHash64(id)"),
        ],
    },
    Migration {
        version: 4,
        name: "0004_shared_state",
        sql: include_str!("../../../migrations/clickhouse/0004_shared_state.sql"),
        // One shard holds all of a session's or a job's rows, so a read of them sees
        // every claim together.
        distributed: &[
            ("dashboard_sessions", "cityHash64(id_hash)"),
            ("job_leases", "cityHash64(job)"),
        ],
    },
    // Errors spread by row id as the metrics do; a state key's versions, a notification's
    // versions and a rule's history each stay on one shard.
    Migration {
        version: 5,
        name: "0005_alerts",
        sql: include_str!("../../../migrations/clickhouse/0005_alerts.sql"),
        distributed: &[
            ("app_errors", "cityHash64(id)"),
            ("alert_state", "cityHash64(kind, state_key)"),
            ("alert_history", "cityHash64(rule_id)"),
            ("alert_outbox", "cityHash64(id)"),
        ],
    },
    // An instance's samples stay on one shard; a recommendation is one row a period.
    Migration {
        version: 6,
        name: "0006_scaling",
        sql: include_str!("../../../migrations/clickhouse/0006_scaling.sql"),
        distributed: &[
            ("system_metrics", "cityHash64(instance)"),
            ("scaling_recommendations", "cityHash64(created_at)"),
        ],
    },
];

/// TABLE_ALREADY_EXISTS, DATABASE_ALREADY_EXISTS: another node won the race.
const ALREADY_EXISTS: [u32; 2] = [57, 82];

/// Where DDL goes: once with ON CLUSTER (ZooKeeper coordinates it), or to every server
/// of `clickhouse.url` in turn.
enum Target {
    OnCluster(String),
    EachServer,
}

/// Migrates and returns the cluster that DDL and mutations go to `ON CLUSTER`, if any.
pub(super) async fn migrate(
    ch: &ClickHouse,
    cfg: &ClickHouseConfig,
) -> Result<Option<String>, ChError> {
    let target = match &cfg.cluster {
        Some(cluster) if has_zookeeper(ch).await => Target::OnCluster(cluster.clone()),
        Some(_) if cfg.replicated => {
            return Err(ChError::Decode(
                "clickhouse.replicated needs ZooKeeper configured on the servers (system.zookeeper is not readable)".into(),
            ))
        }
        _ => Target::EachServer,
    };
    let servers: Vec<Option<usize>> = match target {
        Target::OnCluster(_) => vec![None],
        Target::EachServer => (0..ch.client.urls().len()).map(Some).collect(),
    };
    let mut reached = 0;
    let mut last = None;
    for at in servers {
        match migrate_one(ch, cfg, &target, at).await {
            Ok(()) => reached += 1,
            Err(e @ ChError::Unreachable(_)) => {
                // A server that is down now gets its tables from the next node to start.
                tracing::warn!(error = %e, "ClickHouse server not migrated");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    match (reached, last) {
        (0, Some(e)) => Err(e),
        _ => Ok(match target {
            Target::OnCluster(c) => Some(c),
            Target::EachServer => None,
        }),
    }
}

async fn has_zookeeper(ch: &ClickHouse) -> bool {
    ch.client
        .rows::<serde_json::Value>(
            "SELECT count() AS n FROM system.zookeeper WHERE path = '/'",
            &[],
        )
        .await
        .is_ok()
}

async fn run(ch: &ClickHouse, at: Option<usize>, sql: &str) -> Result<(), ChError> {
    let result = match at {
        Some(i) => ch.client.execute_on(i, sql).await,
        None => ch.client.execute(sql).await,
    };
    match result {
        Err(ChError::Server { code, .. }) if ALREADY_EXISTS.contains(&code) => Ok(()),
        other => other,
    }
}

async fn migrate_one(
    ch: &ClickHouse,
    cfg: &ClickHouseConfig,
    target: &Target,
    at: Option<usize>,
) -> Result<(), ChError> {
    let db = &ch.database;
    let on_cluster = match target {
        Target::OnCluster(c) => format!(" ON CLUSTER {c}"),
        Target::EachServer => String::new(),
    };
    run(
        ch,
        at,
        &format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"),
    )
    .await?;
    run(
        ch,
        at,
        &format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations{on_cluster} (version UInt32, name String, \
             applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
        ),
    )
    .await?;
    let done = applied(ch, at).await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if done > known {
        return Err(ChError::Decode(format!(
            "ClickHouse database {db} was written by a newer growth-stack (schema version {done}, this binary knows up to {known}); upgrade growth-stack"
        )));
    }
    let local = if cfg.cluster.is_some() { "_local" } else { "" };
    for m in MIGRATIONS.iter().filter(|m| m.version > done) {
        for statement in statements(m.sql) {
            let table = table_of(&statement);
            let engine = match (&cfg.cluster, cfg.replicated) {
                (Some(_), true) => format!(
                    "ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{db}/{table}{local}', '{{replica}}')"
                ),
                _ => "MergeTree".to_string(),
            };
            let sql = statement
                .replace("{db}", db)
                .replace("{local}", local)
                .replace("{on_cluster}", &on_cluster)
                .replace("{engine}", &engine);
            run(ch, at, &sql).await?;
        }
        if let Some(cluster) = &cfg.cluster {
            for (table, key) in m.distributed {
                run(
                    ch,
                    at,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{table}{on_cluster} AS {db}.{table}_local \
                         ENGINE = Distributed({cluster}, {db}, {table}_local, {key})"
                    ),
                )
                .await?;
            }
        }
        let insert = format!(
            "INSERT INTO {db}.schema_migrations (version, name) VALUES ({}, {})",
            m.version,
            super::quote(m.name)
        );
        match at {
            Some(i) => ch.client.execute_on(i, &insert).await?,
            None => ch.client.execute(&insert).await?,
        }
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied ClickHouse migration"
        );
    }
    Ok(())
}

async fn applied(ch: &ClickHouse, at: Option<usize>) -> Result<u32, ChError> {
    let sql = format!(
        "SELECT max(version) AS v FROM {}.schema_migrations FORMAT JSONEachRow",
        ch.database
    );
    let body = match at {
        Some(i) => ch.client.post_to(i, &[], bytes::Bytes::from(sql)).await?,
        None => ch.client.post(&[], bytes::Bytes::from(sql)).await?,
    };
    #[derive(serde::Deserialize)]
    struct V {
        v: u32,
    }
    let line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<V>(line)
        .map(|v| v.v)
        .map_err(|e| ChError::Decode(e.to_string()))
}

/// The statements of a migration file: `;`-terminated, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `user_events` of `CREATE TABLE IF NOT EXISTS {db}.user_events{local}...`.
fn table_of(statement: &str) -> String {
    statement
        .split("{db}.")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_named_statements() {
        let s = statements(MIGRATIONS[0].sql);
        assert_eq!(s.len(), 2);
        assert_eq!(table_of(&s[0]), "user_events");
        assert_eq!(table_of(&s[1]), "conversions");
        assert!(s.iter().all(|s| s.contains("IF NOT EXISTS")));
        let v = statements(MIGRATIONS[1].sql);
        assert_eq!(v.len(), 1);
        assert_eq!(table_of(&v[0]), "performance_metrics");
        assert!(v[0].contains("IF NOT EXISTS"));
    }

    #[test]
    fn distributed_tables_are_created_by_their_migration() {
        for m in MIGRATIONS {
            let tables: Vec<String> = statements(m.sql).iter().map(|s| table_of(s)).collect();
            for (table, _) in m.distributed {
                assert!(tables.iter().any(|t| t == table), "{}: {table}", m.name);
            }
        }
    }

    #[test]
    fn versions_count_up_from_one_and_name_their_file() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert_eq!(m.version, last + 1, "{}", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            last = m.version;
        }
    }
}
