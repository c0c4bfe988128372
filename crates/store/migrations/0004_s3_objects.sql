-- S3 polling: every object read, per source, so a restart resumes without
-- reading anything twice or skipping anything.
CREATE TABLE s3_objects (
    source TEXT NOT NULL,
    object_key TEXT NOT NULL,
    etag TEXT,
    read_at INTEGER NOT NULL,
    PRIMARY KEY (source, object_key)
);
