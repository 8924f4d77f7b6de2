-- Read the next batch of users with no email_key yet, in id order, after id :after (migrate).
-- Paging by id rather than by "still NULL", so that an address that has no key (reported, left
-- NULL) is read once, not on every batch.
-- Returns: up to :batch_size rows (id, email).
SELECT
    id,
    email
FROM users
WHERE email_key IS NULL AND id > :after
ORDER BY id
LIMIT :batch_size
