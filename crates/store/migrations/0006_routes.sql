-- Routing rules: which channels get which alerts (see honeytrail_core::route).
CREATE TABLE routes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
