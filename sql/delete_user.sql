-- Delete a user, unless the client's If-Match names other versions.
-- :versions is NULL for no precondition, else the comma-separated versions the client sent.
-- Returns: one row (number of rows deleted): 1 or 0.
DELETE FROM users
WHERE id = :id
  AND (:versions IS NULL OR CONCAT(',', :versions, ',') LIKE CONCAT('%,', version, ',%'))
