-- Insert a user unless another user has the same email, ignoring case.
-- One MERGE, so the check and the insert are one statement: Snowflake runs MERGEs on a
-- table one at a time, where a SELECT-then-INSERT would race.
-- Returns: one row (number of rows inserted): 1 when inserted, 0 when the email is taken.
MERGE INTO users AS target
USING (
    SELECT :id AS id, :email AS email, :name AS name, TO_TIMESTAMP_NTZ(:now) AS now
) AS source
ON LOWER(target.email) = LOWER(source.email)
WHEN NOT MATCHED THEN
    INSERT (id, email, name, created_at, updated_at, version)
    VALUES (source.id, source.email, source.name, source.now, source.now, 1)
