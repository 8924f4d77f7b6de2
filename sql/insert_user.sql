-- Insert a user unless another user holds the same email_key.
-- One MERGE, so the check and the insert are one statement: Snowflake runs MERGEs on a
-- standard table one at a time, where a SELECT-then-INSERT would race. On a hybrid table two
-- racing MERGEs may both find no match; its UNIQUE (email_key) then refuses the second insert
-- with error 200001.
-- Returns: one row (number of rows inserted): 1 when inserted, 0 when the key is taken.
MERGE INTO users AS target
USING (
    SELECT
        :id AS id,
        :email AS email,
        :email_key AS email_key,
        :name AS name,
        TO_TIMESTAMP_NTZ(:now) AS now
) AS source
    ON target.email_key = source.email_key
WHEN NOT MATCHED THEN
    INSERT (id, email, email_key, name, created_at, updated_at, version)
    VALUES (source.id, source.email, source.email_key, source.name, source.now, source.now, 1)
