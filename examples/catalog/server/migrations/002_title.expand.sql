-- 002 expand: items.name becomes items.title. Until the contract both columns exist, and a
-- trigger keeps them equal, so workers of the old release (name) and the new one (title) can
-- serve side by side during the rolling reload.
ALTER TABLE items ADD COLUMN title text;
UPDATE items SET title = name;
CREATE FUNCTION items_sync_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.title := coalesce(NEW.title, NEW.name);
    NEW.name := coalesce(NEW.name, NEW.title);
    RETURN NEW;
END
$$;
CREATE TRIGGER items_sync_title BEFORE INSERT OR UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION items_sync_title();
