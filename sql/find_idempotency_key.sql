-- Read what is stored for a caller's Idempotency-Key, and take a user id from the sequence,
-- in one statement (the first of a POST /users that sends a key).
-- A replay, a reused key and a key in flight are answered from this row alone; a first
-- attempt uses next_id for the user it creates (ids are unique, not gap-free, so an id taken
-- by a replay and never used costs nothing).
-- Returns: one row (next_id, fingerprint, claim, user_id, created_at, claimed_at, expires_at,
-- status, response); all but next_id are NULL when the key was never used.
SELECT
    users_id_seq.nextval AS next_id,
    found.fingerprint,
    found.claim,
    found.user_id,
    found.created_at,
    found.claimed_at,
    found.expires_at,
    found.status,
    found.response
FROM (
    SELECT
        :scope AS scope,
        :idem_key AS idem_key
) AS wanted
LEFT JOIN idempotency_keys AS found
    ON wanted.scope = found.scope AND wanted.idem_key = found.idem_key
