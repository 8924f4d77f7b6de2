-- Check that the database answers (readiness probe and idle-connection check).
-- Returns: one row (ok = 1).
SELECT 1 AS ok
