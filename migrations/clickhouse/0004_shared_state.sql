-- Small mutable state every node must see: dashboard sessions and the leases that let one
-- node at a time run a cluster-wide job. ClickHouse has no UPDATE, so both are append-only
-- logs read with aggregates: a session is a `created` row, ended by an `ended` row of its
-- hash or by a later "every session" row (`id_hash = '*'`); a job's period runs on the node
-- whose claim is the earliest (store/clickhouse/lease.rs). Times are UInt64 microseconds; the partition key is
-- computed from them, so no twin column is needed.
CREATE TABLE IF NOT EXISTS {db}.dashboard_sessions{local}{on_cluster} (
  id_hash String,
  kind UInt8,
  at UInt64,
  expires_at UInt64
) ENGINE = {engine}
PARTITION BY toYYYYMM(toDate(intDiv(at, 1000000)))
ORDER BY (id_hash, at);

CREATE TABLE IF NOT EXISTS {db}.job_leases{local}{on_cluster} (
  job String,
  holder String,
  at UInt64
) ENGINE = {engine}
PARTITION BY toYYYYMM(toDate(intDiv(at, 1000000)))
ORDER BY (job, at, holder);
