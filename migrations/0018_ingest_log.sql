-- The last ingest-log position DuckDB holds (src/store/ingest_log.rs): written in the same
-- transaction as the rows, so a start after a crash replays exactly the records above it.
CREATE TABLE ingest_log_position (position UBIGINT NOT NULL);
INSERT INTO ingest_log_position VALUES (0);
