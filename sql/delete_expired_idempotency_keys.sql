-- Delete the Idempotency-Key rows that expired before :now, whoever's they were
-- (`flask --app userservice sweep-idempotency-keys`, run on a schedule). Requests need no
-- sweep: a claim overwrites an expired row of its own key.
-- Returns: one row (number of rows deleted).
DELETE FROM idempotency_keys
WHERE expires_at <= TO_TIMESTAMP_NTZ(:now)
