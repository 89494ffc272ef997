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
