-- Delete a user unless the client's If-Match names other versions, in one statement that
-- tells which case it met. A MERGE, because its result counts each clause: a user it may not
-- delete is matched by the second clause, which rewrites the row's version unchanged, so
-- "updated" counts a user that exists at another version (nothing visible changes; the row
-- is rewritten only on this failure path).
-- :versions is NULL for no precondition, else the comma-separated versions the client sent.
-- Returns: one row (number of rows updated, number of rows deleted): (0, 1) deleted,
-- (1, 0) the user is at another version (412), (0, 0) no such user (404).
MERGE INTO users AS target
USING (
    SELECT
        :id AS id,
        :versions AS versions
) AS source
    ON target.id = source.id
WHEN MATCHED AND (
    source.versions IS NULL
    OR CONCAT(',', source.versions, ',') LIKE CONCAT('%,', target.version, ',%')
) THEN DELETE
WHEN MATCHED THEN UPDATE SET version = target.version
