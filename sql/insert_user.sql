-- Insert a user unless another user holds the same email_key.
-- One MERGE, so the check and the insert are one statement: Snowflake runs MERGEs on a
-- standard table one at a time, where a SELECT-then-INSERT would race. On a hybrid table two
-- racing MERGEs may both find no match; its UNIQUE (email_key) then refuses the second insert
-- with error 200001.
-- A user already holding the key with this very id and creation time is this create's own,
-- written by an earlier attempt with the same Idempotency-Key whose answer was lost: the
-- second clause matches it and rewrites its version unchanged, so "updated" counts it (a
-- fresh id from the sequence, taken now, matches no row).
-- Returns: one row (number of rows inserted, number of rows updated): (1, 0) inserted,
-- (0, 1) already written by an earlier attempt, (0, 0) the key is taken.
MERGE INTO users AS target
USING (
    SELECT
        :id AS id,
        :email AS email,
        :email_key AS email_key,
        :name AS name,
        TO_TIMESTAMP_NTZ(:now) AS now
) AS source
    ON target.email_key = source.email_key
WHEN MATCHED AND target.id = source.id AND target.created_at = source.now THEN
    UPDATE SET version = target.version
WHEN NOT MATCHED THEN
    INSERT (id, email, email_key, name, created_at, updated_at, version)
    VALUES (source.id, source.email, source.email_key, source.name, source.now, source.now, 1)
