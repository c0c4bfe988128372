-- What changed in the token table, counted in the same transaction as each
-- change: tokens added and tokens retired. A running process reads this one
-- row (not the whole table) to know whether its match index is current.
CREATE TABLE registry_changes (
    id INTEGER PRIMARY KEY,
    added INTEGER NOT NULL,
    retired INTEGER NOT NULL
);
INSERT INTO registry_changes (id, added, retired) VALUES (1, 0, 0);
