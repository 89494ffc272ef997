-- Apps identify people their own way ("user-42", an email hash, a number), rarely by UUID.
-- Events, conversions and AI calls already keep user ids as text (0004, 0006); web
-- vitals and query timings follow, so one person carries one id across every stream.
ALTER TABLE performance_metrics ALTER COLUMN user_id TYPE VARCHAR;
ALTER TABLE database_performance_metrics ALTER COLUMN user_id TYPE VARCHAR;
