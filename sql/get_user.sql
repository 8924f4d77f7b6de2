-- Get one user by id.
-- Returns: zero or one row (id, email, name, created_at, updated_at, version).
SELECT
    id,
    email,
    name,
    created_at,
    updated_at,
    version
FROM users
WHERE id = :id
