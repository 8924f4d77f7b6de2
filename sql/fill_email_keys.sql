-- Store a batch of email keys computed in Python (migrate), in one statement per batch.
-- :keys is a JSON array of {"id": ..., "key": ...}; a row that got its key meanwhile (from the
-- service itself, or a concurrent run) keeps it.
-- Returns: one row (number of rows updated, number of multi-joined rows updated).
UPDATE users
SET email_key = fill.email_key
FROM (
    SELECT
        value:id::NUMBER(19, 0) AS id,
        value:key::VARCHAR AS email_key
    FROM TABLE(FLATTEN(INPUT => PARSE_JSON(:keys)))
) AS fill
WHERE users.id = fill.id AND users.email_key IS NULL
