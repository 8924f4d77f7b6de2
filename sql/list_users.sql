-- List one page of users in id order, optionally only the one holding an email_key, with the
-- count of all matching users, in one statement.
-- :email_key is NULL for no filter; the page holds positions offset+1 .. offset+page_size.
-- Returns: at least one row (total, id, email, name, created_at, updated_at, version);
-- when the page is empty, one row with the total and NULLs.
WITH matching AS (
    SELECT
        id,
        email,
        name,
        created_at,
        updated_at,
        version,
        ROW_NUMBER() OVER (ORDER BY id) AS position
    FROM users
    WHERE :email_key IS NULL OR email_key = :email_key
)

SELECT
    counted.total,
    page.id,
    page.email,
    page.name,
    page.created_at,
    page.updated_at,
    page.version
FROM (SELECT COUNT(*) AS total FROM matching) AS counted
LEFT JOIN matching AS page
    ON page.position > :offset AND page.position <= :offset + :page_size
ORDER BY page.id
