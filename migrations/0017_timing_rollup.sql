-- The roll-up behind long windows of the overview's AI and database headlines: per stream
-- (1 AI calls, 2 query timings), UTC day of event time and log bucket of the duration
-- (src/store/buckets.rs: within 2%), the calls, the failed ones, the cache hits and the
-- tokens. Folded by commit number like the growth roll-up, so AI calls and query timings
-- are numbered by the writer from now on (`seq`); the first fold after this migration
-- takes the rows written before it, in the background. See src/store/timings.rs.
ALTER TABLE ai_performance_metrics ADD COLUMN seq BIGINT;
ALTER TABLE database_performance_metrics ADD COLUMN seq BIGINT;
CREATE TABLE timing_rollup (
    stream UTINYINT NOT NULL,
    day BIGINT NOT NULL,
    bucket SMALLINT NOT NULL,
    n BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    PRIMARY KEY (stream, day, bucket)
);
CREATE TABLE timing_rollup_state (stream UTINYINT NOT NULL, seq BIGINT NOT NULL);
