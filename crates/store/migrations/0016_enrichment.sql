-- Data sets loaded with `honeytrail enrich load`: AWS's published IP ranges
-- and a Tor exit list, kept whole in the database so every replica labels
-- incidents alike. One row per kind; a new load replaces the old.
CREATE TABLE enrichment_data (
    kind TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    published TEXT,
    entries INTEGER NOT NULL,
    loaded_at INTEGER NOT NULL,
    loaded_by TEXT NOT NULL
);
