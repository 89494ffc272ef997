-- Database optimisation. Every reported query keeps what was sent in `query` (the guide's
-- column) and gains its fingerprint: `fingerprint` is a short id, `normalized_query` the
-- text with literals replaced by $n placeholders. `request_id`, `route` and `source`
-- (caller file:line) are optional and let N+1 loops be found per request.
ALTER TABLE database_performance_metrics ADD COLUMN fingerprint VARCHAR;
ALTER TABLE database_performance_metrics ADD COLUMN normalized_query VARCHAR;
ALTER TABLE database_performance_metrics ADD COLUMN request_id VARCHAR;
ALTER TABLE database_performance_metrics ADD COLUMN route VARCHAR;
ALTER TABLE database_performance_metrics ADD COLUMN source VARCHAR;

-- Snapshots of the user's PostgreSQL `pg_stat_statements` (when `database.url` is set):
-- counters are cumulative, so a window's figures are the difference of two snapshots.
CREATE TABLE pg_statement_snapshots (
  polled_at TIMESTAMPTZ NOT NULL,
  queryid BIGINT NOT NULL,
  fingerprint VARCHAR NOT NULL,
  query VARCHAR NOT NULL,
  calls BIGINT NOT NULL,
  total_ms DOUBLE NOT NULL,
  rows BIGINT NOT NULL,
  shared_blks_hit BIGINT NOT NULL,
  shared_blks_read BIGINT NOT NULL
);
