-- 001: the catalog's items.
CREATE TABLE items (
    id serial PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO items (name) VALUES ('anchor'), ('bollard'), ('capstan');
