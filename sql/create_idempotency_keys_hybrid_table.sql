-- Create the table of Idempotency-Key claims as a Snowflake hybrid table (DDL, run by
-- `flask --app userservice init-db --hybrid`; does nothing if the table exists).
-- The same columns as create_idempotency_keys_table.sql, so the same DML files serve both
-- kinds. The table enforces its PRIMARY KEY: of two requests that claim one key at once, the
-- second's insert is refused (error 200001), and it answers 409 IDEMPOTENCY_KEY_IN_FLIGHT.
-- Returns: one status row.
CREATE HYBRID TABLE IF NOT EXISTS idempotency_keys (
    scope VARCHAR NOT NULL,
    idem_key VARCHAR(255) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    claim VARCHAR(36) NOT NULL,
    user_id NUMBER(19, 0) NOT NULL,
    created_at TIMESTAMP_NTZ(6) NOT NULL,
    claimed_at TIMESTAMP_NTZ(6) NOT NULL,
    expires_at TIMESTAMP_NTZ(6) NOT NULL,
    status NUMBER(3, 0),
    response VARCHAR,
    PRIMARY KEY (scope, idem_key)
)
