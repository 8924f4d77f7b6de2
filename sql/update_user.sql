-- Change a user's email and/or name (NULL keeps the current value), unless another user has
-- the new email (ignoring case), or the client's If-Match names other versions.
-- :versions is NULL for no precondition, else the comma-separated versions the client sent.
-- Snowflake runs UPDATEs on a table one at a time, so the NOT EXISTS guard cannot race.
-- Returns: one row (number of rows updated, number of multi-joined rows updated): 1 or 0.
UPDATE users
SET email = COALESCE(:email, email),
    name = COALESCE(:name, name),
    updated_at = TO_TIMESTAMP_NTZ(:now),
    version = version + 1
WHERE id = :id
  AND (:versions IS NULL OR CONCAT(',', :versions, ',') LIKE CONCAT('%,', version, ',%'))
  AND NOT EXISTS (
      SELECT 1 FROM users AS other
      WHERE LOWER(other.email) = LOWER(:email) AND other.id <> :id
  )
