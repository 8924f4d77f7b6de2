-- Claim a caller's Idempotency-Key for this request, in one MERGE (the second statement of a
-- first attempt): Snowflake runs MERGEs on a standard table one at a time, so of two requests
-- that claim one key only one finds it free; on a hybrid table the PRIMARY KEY refuses the
-- second insert (error 200001).
-- A key is free when no row holds it, or its row expired (:now is past expires_at: the row is
-- overwritten, which is how expired keys are swept as they are reused), or its create was
-- abandoned: still unanswered, claimed by :held_by (the claim find_idempotency_key.sql saw)
-- at or before :stale_before. Taking over an abandoned claim keeps its user_id and created_at,
-- so the retry writes the very user the abandoned attempt may have written.
-- Returns: one row (number of rows inserted, number of rows updated); the key is this
-- request's when their sum is 1.
MERGE INTO idempotency_keys AS target
USING (
    SELECT
        :scope AS scope,
        :idem_key AS idem_key,
        :fingerprint AS fingerprint,
        :claim AS claim,
        :user_id AS user_id,
        TO_TIMESTAMP_NTZ(:now) AS now,
        TO_TIMESTAMP_NTZ(:expires_at) AS expires_at,
        :held_by AS held_by,
        TO_TIMESTAMP_NTZ(:stale_before) AS stale_before
) AS source
    ON target.scope = source.scope AND target.idem_key = source.idem_key
WHEN MATCHED AND target.expires_at <= source.now THEN
    UPDATE SET
        fingerprint = source.fingerprint,
        claim = source.claim,
        user_id = source.user_id,
        created_at = source.now,
        claimed_at = source.now,
        expires_at = source.expires_at,
        status = NULL,
        response = NULL
WHEN MATCHED
AND target.status IS NULL
AND target.claim = source.held_by
AND target.claimed_at <= source.stale_before
THEN
    UPDATE SET
        claim = source.claim,
        claimed_at = source.now
WHEN NOT MATCHED THEN
    INSERT (scope, idem_key, fingerprint, claim, user_id, created_at, claimed_at, expires_at)
    VALUES (
        source.scope,
        source.idem_key,
        source.fingerprint,
        source.claim,
        source.user_id,
        source.now,
        source.now,
        source.expires_at
    )
