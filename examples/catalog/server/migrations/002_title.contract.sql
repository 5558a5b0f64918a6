-- 002 contract: every worker reads title now; name and the trigger go.
DROP TRIGGER items_sync_title ON items;
DROP FUNCTION items_sync_title();
ALTER TABLE items DROP COLUMN name;
ALTER TABLE items ALTER COLUMN title SET NOT NULL;
