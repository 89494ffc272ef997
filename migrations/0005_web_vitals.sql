-- Web vitals as the web-vitals library and our tracker report them. One row per report:
-- either one metric (a web-vitals / Next.js object: `metric` names it) or a whole page
-- view (our tracker, `metric` NULL, several of lcp..inp set). CLS and INP are reported
-- again on every hide, so a metric instance can have several rows: reads keep the newest
-- row per (metric_id, metric). `rereport` marks rows known to replace an earlier one, so
-- that deduplication only has to look at those keys instead of grouping every row.
ALTER TABLE performance_metrics ADD COLUMN metric_id VARCHAR;
ALTER TABLE performance_metrics ADD COLUMN metric VARCHAR;
ALTER TABLE performance_metrics ADD COLUMN rereport BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE performance_metrics ADD COLUMN navigation_type VARCHAR;
-- mobile, tablet, desktop or unknown: from the client, else from the user agent.
ALTER TABLE performance_metrics ADD COLUMN device VARCHAR;
-- The page path as visited (no query string); `route` holds its template.
ALTER TABLE performance_metrics ADD COLUMN path VARCHAR;
ALTER TABLE performance_metrics ADD COLUMN attribution JSON;

-- The newest report of every metric instance: what the dashboard counts. For the DuckDB
-- CLI; the server runs the same logic with its time window applied first.
CREATE VIEW performance_latest AS
WITH superseding AS (
  SELECT metric_id, coalesce(metric, '') AS metric, arg_max(id, created_at) AS keep
  FROM performance_metrics
  WHERE (metric_id, coalesce(metric, '')) IN (
    SELECT (metric_id, coalesce(metric, '')) FROM performance_metrics WHERE rereport)
  GROUP BY ALL
)
SELECT p.* FROM performance_metrics p
LEFT JOIN superseding s ON p.metric_id = s.metric_id AND coalesce(p.metric, '') = s.metric
WHERE s.keep IS NULL OR s.keep = p.id;

-- Daily roll-up of the newest reports, for long windows over many page views: per UTC
-- day, route, device and metric, how many values fell in each log bucket (1.04 apart, so a
-- percentile read from it is within 2% of the exact one) and in which rating (exact).
-- `n` may be negative: a re-report adds its new value and takes back the one it replaces.
CREATE TABLE performance_rollup (
  day TIMESTAMP NOT NULL,
  route VARCHAR,
  device VARCHAR NOT NULL,
  metric VARCHAR NOT NULL,
  bucket SMALLINT NOT NULL,
  rating UTINYINT NOT NULL,
  n BIGINT NOT NULL
);
-- Rows with created_at before `done_until` (a UTC midnight) are in the roll-up.
CREATE TABLE performance_rollup_state (done_until TIMESTAMP NOT NULL);
