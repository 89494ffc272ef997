-- The AI gateway records every call it serves. Users are whatever the app calls them
-- (OpenAI's `user`, Anthropic's `metadata.user_id`), rarely UUIDs: keep them as text.
ALTER TABLE ai_performance_metrics ALTER COLUMN user_id TYPE VARCHAR;
-- `tokens` stays the total; these split it and add what a gateway knows about a call.
ALTER TABLE ai_performance_metrics ADD COLUMN provider VARCHAR;
ALTER TABLE ai_performance_metrics ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE ai_performance_metrics ADD COLUMN completion_tokens INTEGER;
-- Milliseconds to the first streamed byte (or the whole answer when not streamed).
ALTER TABLE ai_performance_metrics ADD COLUMN ttft DOUBLE;
-- USD, from ai.prices; 0 for cache hits and the demo provider.
ALTER TABLE ai_performance_metrics ADD COLUMN cost DOUBLE;
ALTER TABLE ai_performance_metrics ADD COLUMN stream BOOLEAN;
ALTER TABLE ai_performance_metrics ADD COLUMN demo BOOLEAN;
-- Estimated tokens removed by ai.normalize_whitespace.
ALTER TABLE ai_performance_metrics ADD COLUMN tokens_saved INTEGER;
