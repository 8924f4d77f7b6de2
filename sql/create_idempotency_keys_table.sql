-- Create the table of Idempotency-Key claims and stored answers for POST /users (DDL, run by
-- `flask --app userservice init-db`; does nothing if the table exists).
-- One row per (scope, idem_key): scope is the caller (its token subject), idem_key the
-- client's key. While a create runs, status is NULL and `claim` names the request holding
-- it since claimed_at; afterwards status and response hold its answer. user_id and
-- created_at are what the create writes, so a retry after a lost answer writes the same user.
-- No PRIMARY KEY: Snowflake does not enforce one on a standard table (the emulator would), so
-- claim_idempotency_key.sql keeps (scope, idem_key) unique itself, as a MERGE. Times are UTC.
-- Returns: one status row.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope VARCHAR NOT NULL,
    idem_key VARCHAR(255) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    claim VARCHAR(36) NOT NULL,
    user_id NUMBER(19, 0) NOT NULL,
    created_at TIMESTAMP_NTZ(6) NOT NULL,
    claimed_at TIMESTAMP_NTZ(6) NOT NULL,
    expires_at TIMESTAMP_NTZ(6) NOT NULL,
    status NUMBER(3, 0),
    response VARCHAR
)
