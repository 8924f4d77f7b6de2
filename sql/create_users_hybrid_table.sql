-- Create the users table as a Snowflake hybrid table (DDL, run by
-- `flask --app userservice init-db --hybrid`; does nothing if a users table exists).
-- The same columns as create_users_table.sql, so the same DML files serve both kinds. A hybrid
-- table enforces its PRIMARY KEY and UNIQUE with indexes and row locks: a second holder of an
-- email_key is refused by the table itself (error 200001, answered 409 EMAIL_TAKEN), so
-- uniqueness no longer rests on Snowflake running a table's writes one at a time.
-- Returns: one status row.
CREATE HYBRID TABLE IF NOT EXISTS users (
    id NUMBER(19, 0) NOT NULL PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    email_key VARCHAR NOT NULL,
    name VARCHAR(255) NOT NULL,
    created_at TIMESTAMP_NTZ(6) NOT NULL,
    updated_at TIMESTAMP_NTZ(6) NOT NULL,
    version NUMBER(19, 0) NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email_key)
)
