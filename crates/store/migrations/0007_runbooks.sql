-- Runbooks: MiniJinja templates chosen per token label or placement format.
CREATE TABLE runbooks (
    name TEXT PRIMARY KEY,
    selector TEXT NOT NULL,
    template TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
