-- Store a batch of email keys computed in Python (migrate), in one statement per batch.
-- :keys is a JSON array of {"id": ..., "key": ...}; a row that got its key meanwhile (from the
-- service itself, or a concurrent run) keeps it.
-- Returns: one row (number of rows updated, number of multi-joined rows updated).
UPDATE users
SET email_key = fill.value:key::VARCHAR
FROM TABLE(FLATTEN(INPUT => PARSE_JSON(:keys))) AS fill
WHERE users.id = fill.value:id::NUMBER AND users.email_key IS NULL
