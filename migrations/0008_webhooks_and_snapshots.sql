-- 0008: the webhook notifier's subscriptions and dead letters, and the initial snapshot's progress.
--
-- Subscriptions are rows: made through the subscription server (docs/webhooks.md) or by SQL, both count. An empty
-- schema_name / table_name / event_types means "all". One subscription per (url, schema_name, table_name): a second
-- subscribe is an update.
CREATE TABLE IF NOT EXISTS pgstream.webhook_subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text        NOT NULL,
    schema_name text        NOT NULL DEFAULT '',
    table_name  text        NOT NULL DEFAULT '',
    event_types text[]      NOT NULL DEFAULT '{}',
    -- Standard Webhooks signing secret; NULL = deliveries are not signed.
    secret      text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT webhook_subscriptions_target UNIQUE (url, schema_name, table_name),
    CONSTRAINT webhook_subscriptions_event_types CHECK (event_types <@ ARRAY['I', 'U', 'D', 'T']::text[])
);

-- A delivery given up (a permanent 4xx, or its retries exhausted): the stream goes on, the delivery stays here.
-- No foreign key: unsubscribing keeps a subscription's dead letters.
CREATE TABLE IF NOT EXISTS pgstream.webhook_dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint      NOT NULL,
    url             text        NOT NULL,
    -- The payload as it was sent ({"Data": <event>}), byte for byte: json, not jsonb.
    payload         json        NOT NULL,
    lsn             pg_lsn,
    idempotency_key text        NOT NULL,
    -- HTTP status of the last attempt; NULL when it got no response (connection error, timeout).
    status          integer,
    last_error      text        NOT NULL,
    attempts        integer     NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX IF NOT EXISTS webhook_dead_letters_subscription ON pgstream.webhook_dead_letters (subscription_id);

-- An initial snapshot or backfill (docs/snapshot.md) and the table ranges it reads. A range is done once every row
-- of it has been delivered; a snapshot restarted after a kill reads only the ranges not done.
CREATE TABLE IF NOT EXISTS pgstream.snapshots (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The slot whose stream the snapshot hands over to; NULL for a one-off `pgstream snapshot`.
    slot_name    text,
    -- The table patterns asked for, as given.
    tables       text[]      NOT NULL,
    -- The stream position the snapshot is consistent with (the slot's consistent point for a new slot).
    snapshot_lsn pg_lsn,
    status       text        NOT NULL DEFAULT 'running',
    error        text,
    started_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at  timestamptz,
    CONSTRAINT snapshots_status CHECK (status IN ('running', 'done', 'failed'))
);
CREATE TABLE IF NOT EXISTS pgstream.snapshot_ranges (
    snapshot_id    bigint  NOT NULL REFERENCES pgstream.snapshots (id) ON DELETE CASCADE,
    table_schema   text    NOT NULL,
    table_name     text    NOT NULL,
    -- Heap pages [first_page, end_page) read with a TID range scan; end_page NULL = to the table's end.
    first_page     bigint  NOT NULL,
    end_page       bigint,
    estimated_rows bigint,
    rows_done      bigint  NOT NULL DEFAULT 0,
    -- How often the range was read: more than 1 after a restart re-read it.
    read_count     integer NOT NULL DEFAULT 0,
    done_at        timestamptz,
    PRIMARY KEY (snapshot_id, table_schema, table_name, first_page)
);

REVOKE ALL ON ALL TABLES IN SCHEMA pgstream FROM PUBLIC;

INSERT INTO pgstream.migrations (version, name) VALUES (8, 'webhooks_and_snapshots') ON CONFLICT (version) DO NOTHING;
