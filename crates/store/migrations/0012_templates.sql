-- Placement templates: which bait goes where on an enrolled host. The two
-- rows are honeytrail_core::template::shipped() (a test keeps them equal).
CREATE TABLE placement_templates (
    name TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    profile TEXT,
    owner TEXT,
    mode INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

INSERT INTO placement_templates (name, format, path, profile, owner, mode, created_by, created_at)
VALUES ('server', 'aws-credentials', '/root/.aws/credentials', 'prod', 'root', 384, 'honeytrail', 0);
INSERT INTO placement_templates (name, format, path, profile, owner, mode, created_by, created_at)
VALUES ('laptop', 'aws-credentials', '~/.aws/credentials', 'prod', NULL, 384, 'honeytrail', 0);
