-- Least privilege for userservice: a role of its own with USAGE on its warehouse, database
-- and schema, SELECT, INSERT, UPDATE and DELETE on the users table, SELECT, INSERT and UPDATE
-- on the idempotency_keys table, USAGE on the id sequence, and nothing else (no OWNERSHIP, no CREATE, no future grants, never ACCOUNTADMIN).
--
-- An administrator runs this once, by hand, AFTER the table and sequence exist:
--     1. create them with an owner role, never the service's:
--            SNOWFLAKE_ROLE=SYSADMIN make init-db
--     2. snowsql -f sql/admin/grants.sql   (or paste it into a worksheet)
-- It lives in sql/admin/ because the service loads only sql/*.sql, one statement per file,
-- and this is an administrator's script of several statements that the service never runs.
-- The names are .env.example's; change them here if yours differ.

USE ROLE SYSADMIN;
CREATE WAREHOUSE IF NOT EXISTS USERSERVICE_WH
WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60 AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE;

USE ROLE USERADMIN;
CREATE ROLE IF NOT EXISTS USERSERVICE_ROLE
COMMENT = 'userservice: reads and writes USERSERVICE.PUBLIC.USERS and IDEMPOTENCY_KEYS';
-- TYPE = SERVICE: no password and no MFA; it logs in with a key pair, a token or workload
-- identity (see the README for ALTER USER ... SET RSA_PUBLIC_KEY).
CREATE USER IF NOT EXISTS USERSERVICE_SVC
    TYPE = SERVICE
    DEFAULT_ROLE = USERSERVICE_ROLE
    DEFAULT_WAREHOUSE = USERSERVICE_WH
    DEFAULT_NAMESPACE = USERSERVICE.PUBLIC
    COMMENT = 'userservice';

USE ROLE SECURITYADMIN;
GRANT ROLE USERSERVICE_ROLE TO USER USERSERVICE_SVC;
-- So that SYSADMIN, which owns the objects, also sees what the service can do.
GRANT ROLE USERSERVICE_ROLE TO ROLE SYSADMIN;
GRANT USAGE ON WAREHOUSE USERSERVICE_WH TO ROLE USERSERVICE_ROLE;
GRANT USAGE ON DATABASE USERSERVICE TO ROLE USERSERVICE_ROLE;
GRANT USAGE ON SCHEMA USERSERVICE.PUBLIC TO ROLE USERSERVICE_ROLE;
-- get_user, get_user_for_update, list_users (SELECT); insert_user (MERGE: SELECT, INSERT);
-- update_user (UPDATE, SELECT for its NOT EXISTS); delete_user (MERGE: SELECT, DELETE, and
-- UPDATE for the clause that counts a user at another version). init-db and migrate (ALTER
-- TABLE) run with the owner role, like step 1 below.
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE USERSERVICE.PUBLIC.USERS TO ROLE USERSERVICE_ROLE;
-- find_idempotency_key (SELECT); claim_idempotency_key (MERGE: SELECT, INSERT, UPDATE);
-- store_idempotent_response and release_idempotency_key (UPDATE). Expired keys are deleted by
-- `flask --app userservice sweep-idempotency-keys`, run with the owner role like init-db.
GRANT SELECT, INSERT, UPDATE ON TABLE USERSERVICE.PUBLIC.IDEMPOTENCY_KEYS TO ROLE USERSERVICE_ROLE;
-- next_user_id and find_idempotency_key (users_id_seq.NEXTVAL).
GRANT USAGE ON SEQUENCE USERSERVICE.PUBLIC.USERS_ID_SEQ TO ROLE USERSERVICE_ROLE;
