-- Give up a caller's Idempotency-Key after the create failed with a 5xx, storing no answer:
-- the claim is dated back to :released_at (long past), so the next request with the key and
-- the same body takes it over at once. user_id and created_at stay, since a create that
-- failed may still have written its user; a different body stays refused until the key expires.
-- Returns: one row (number of rows updated, number of multi-joined rows updated): 1 or 0.
UPDATE idempotency_keys
SET claimed_at = TO_TIMESTAMP_NTZ(:released_at)
WHERE scope = :scope AND idem_key = :idem_key AND claim = :claim AND status IS NULL
