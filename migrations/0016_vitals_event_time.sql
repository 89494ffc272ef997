-- Web-vitals windows read `event_time` (when the page was viewed), as every other stream's
-- windows do, so the roll-up behind long windows buckets its days by `event_time` too (it
-- still takes rows by the hour they were received: see src/vitals/rollup.rs). The hours
-- rolled up so far were bucketed by `created_at`: drop them, and the store's upkeep loop
-- rolls every hour up again from the first sample (reads use the rows meanwhile).
DELETE FROM performance_rollup;
DELETE FROM performance_rollup_state;
