-- Create the users table (DDL, run by `flask --app userservice init-db`).
-- No UNIQUE on email: Snowflake does not enforce it, so insert_user.sql and update_user.sql
-- keep emails unique (case-insensitively) themselves. Times are UTC. `version` counts
-- changes and is the ETag.
-- Returns: one status row.
CREATE TABLE IF NOT EXISTS users (
    id NUMBER(19, 0) NOT NULL PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    created_at TIMESTAMP_NTZ(6) NOT NULL,
    updated_at TIMESTAMP_NTZ(6) NOT NULL,
    version NUMBER(19, 0) NOT NULL
)
