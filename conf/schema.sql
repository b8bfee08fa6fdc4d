-- ytkafka-consumer: the results table.
-- The same SQL serves SQLite (3.24+) and PostgreSQL (9.5+); the consumer runs
-- it at start, so every statement must be idempotent. Timestamps are RFC 3339
-- UTC text ("2026-11-23T04:12:48.123Z"), which sorts in time order on both.
CREATE TABLE IF NOT EXISTS videos (
    video_id         VARCHAR(16)  NOT NULL PRIMARY KEY,
    status           VARCHAR(16)  NOT NULL
                     CHECK (status IN ('ok', 'unavailable', 'error')),
    title            TEXT,
    author_name      TEXT,
    channel_id       VARCHAR(64),
    duration_seconds BIGINT,
    view_count       BIGINT,
    publish_date     VARCHAR(32),
    metadata_json    TEXT,
    attempts         INTEGER      NOT NULL DEFAULT 0,
    last_error       TEXT,
    first_seen_at    VARCHAR(32)  NOT NULL,
    updated_at       VARCHAR(32)  NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_status_idx ON videos (status);
CREATE INDEX IF NOT EXISTS videos_updated_at_idx ON videos (updated_at);
