-- Create the sequence that numbers users (DDL, run by `flask --app userservice init-db`).
-- Ids are taken from it before the insert, since Snowflake has no INSERT ... RETURNING.
-- Ids are unique, not gap-free (Snowflake sequences skip values).
-- Returns: one status row.
CREATE SEQUENCE IF NOT EXISTS users_id_seq START = 1 INCREMENT = 1
