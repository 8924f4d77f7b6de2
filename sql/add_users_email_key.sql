-- Add the email_key column to a users table of the earlier shape (first step of
-- `flask --app userservice migrate`; nothing happens when it is there already).
-- Nullable, so that the rows already there (and any a previous version of the service inserts
-- while the migration runs) stay valid until fill_email_keys.sql fills them.
-- Returns: one status row.
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_key VARCHAR
