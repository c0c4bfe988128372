-- Token registry: tokens, their labels, placements and chain of custody.
-- Times are milliseconds since the Unix epoch, UTC.
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    access_key_id TEXT NOT NULL UNIQUE,
    secret_sealed TEXT,
    iam_user_name TEXT,
    iam_user_arn TEXT,
    account_id TEXT,
    source TEXT,
    memo TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    rotated_from INTEGER REFERENCES tokens(id)
);
CREATE INDEX tokens_iam_user ON tokens (iam_user_name);

CREATE TABLE token_labels (
    token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (token_id, name)
);
CREATE INDEX token_labels_name_value ON token_labels (name, value);

CREATE TABLE placements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    owner TEXT,
    asset TEXT,
    serial TEXT,
    format TEXT,
    placed_by TEXT,
    notes TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    placed_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE INDEX placements_token ON placements (token_id);
CREATE INDEX placements_host ON placements (host);
CREATE INDEX placements_owner ON placements (owner);

CREATE TABLE custody_hops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL REFERENCES tokens(id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    description TEXT NOT NULL,
    actor TEXT,
    automatic INTEGER NOT NULL DEFAULT 0,
    UNIQUE (token_id, seq)
);
