-- List the users whose email_key another user also holds: addresses that were distinct under
-- the earlier LOWER() comparison and are one address now (migrate reports them).
-- Returns: zero or more rows (email_key, id, email), grouped by key, in id order.
SELECT
    email_key,
    id,
    email
FROM users
WHERE
    email_key IN (
        SELECT shared.email_key FROM users AS shared
        WHERE shared.email_key IS NOT NULL
        GROUP BY shared.email_key
        HAVING COUNT(*) > 1
    )
ORDER BY email_key, id
