-- Write a user's email, email_key and name (the second statement of PUT and PATCH), only if
-- the user is still at the version the request read (:version), and only if no other user
-- holds the email_key unless the user already holds it. Snowflake has no RETURNING: when this
-- changes 1 row, that row is exactly these values at version :version + 1, so the response is
-- what this write produced; 0 rows means another write came between the two statements.
-- Snowflake runs UPDATEs on a standard table one at a time, so the NOT EXISTS guard cannot
-- race; on a hybrid table its UNIQUE (email_key) refuses a second holder too (error 200001).
-- Returns: one row (number of rows updated, number of multi-joined rows updated): 1 or 0.
UPDATE users
SET
    email = :email,
    email_key = :email_key,
    name = :name,
    updated_at = TO_TIMESTAMP_NTZ(:now),
    version = :version + 1
WHERE
    id = :id
    AND version = :version
    AND (
        email_key = :email_key
        OR NOT EXISTS (
            SELECT 1 FROM users AS other
            WHERE other.email_key = :email_key AND other.id <> :id
        )
    )
