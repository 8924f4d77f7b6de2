-- Take the next user id from the sequence (first statement of a create).
-- Returns: one row (id).
SELECT users_id_seq.nextval AS id
