-- Store the answer of the create that holds a caller's Idempotency-Key (the last statement of
-- a first attempt), so that a retry with the key gets it back.
-- Only while this request still holds the claim: if it took so long that another request took
-- the key over, that request's answer is the one kept.
-- :response is JSON: {"body", "content_type", "location", "etag"}.
-- Returns: one row (number of rows updated, number of multi-joined rows updated): 1 or 0.
UPDATE idempotency_keys
SET
    status = :status,
    response = :response
WHERE scope = :scope AND idem_key = :idem_key AND claim = :claim
