-- Create the users table (DDL, run by `flask --app userservice init-db`).
-- `email` is what the client sent; `email_key` is userservice.emails.email_key(email), what
-- uniqueness and the email filter compare (with no function on the column, so that a key or
-- index can serve them). No UNIQUE on it: Snowflake does not enforce UNIQUE on a standard
-- table (the emulator would), so insert_user.sql and update_user.sql keep keys unique
-- themselves. Times are UTC. `version` counts changes and is the ETag.
-- Returns: one status row.
CREATE TABLE IF NOT EXISTS users (
    id NUMBER(19, 0) NOT NULL PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    email_key VARCHAR NOT NULL,
    name VARCHAR(255) NOT NULL,
    created_at TIMESTAMP_NTZ(6) NOT NULL,
    updated_at TIMESTAMP_NTZ(6) NOT NULL,
    version NUMBER(19, 0) NOT NULL
)
