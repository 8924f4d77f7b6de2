-- Read a user before PUT or PATCH changes it (the first of their two statements), with
-- whether another user holds the email_key it would take: the facts that decide 404, 412
-- and 409 before anything is written.
-- :email_key is NULL when the request sends no email; taken is then never true, nor when the
-- user keeps the key it holds (even one that migrate reported shared).
-- Returns: zero or one row (id, email, email_key, name, created_at, updated_at, version,
-- taken).
SELECT
    id,
    email,
    email_key,
    name,
    created_at,
    updated_at,
    version,
    email_key IS DISTINCT FROM :email_key AND EXISTS (
        SELECT 1 FROM users AS other
        WHERE other.email_key = :email_key AND other.id <> :id
    ) AS taken
FROM users
WHERE id = :id
