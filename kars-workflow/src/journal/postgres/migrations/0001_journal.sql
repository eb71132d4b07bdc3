-- kars database schema version 1: instances, their records, and the effects outbox.
-- `{schema}` is replaced by the store's (quoted) schema name.

-- One row per instance: its header and its version (the number of its records). An append
-- is a compare-and-set on `version` (and, for a replica, on its lease: `owner`, `epoch`, and
-- `lease_expires_at` still ahead of the database's clock). `epoch` rises with every claim, so
-- a replica that lost its lease can never write again under it. `next_wake` is the instant
-- the instance's next timer is due, which replicas poll for.
CREATE TABLE {schema}.instances (
    instance         text        PRIMARY KEY,
    header           bytea       NOT NULL,
    version          bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    owner            text,
    epoch            bigint      NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    next_wake        timestamptz
);

CREATE INDEX instances_next_wake ON {schema}.instances (next_wake) WHERE next_wake IS NOT NULL;

-- One row per record: record `sequence` (from 0) brings the instance to version sequence + 1.
CREATE TABLE {schema}.records (
    instance text   NOT NULL REFERENCES {schema}.instances (instance) ON DELETE CASCADE,
    sequence bigint NOT NULL CHECK (sequence >= 0),
    payload  bytea  NOT NULL,
    PRIMARY KEY (instance, sequence)
);

-- The effects outbox, written in the transaction of the append that emitted each effect and
-- marked done in the transaction of the append that acknowledged it.
CREATE TABLE {schema}.outbox (
    instance         text        NOT NULL REFERENCES {schema}.instances (instance) ON DELETE CASCADE,
    key              text        NOT NULL,
    effect           jsonb       NOT NULL,
    emitted_version  bigint      NOT NULL,
    emitted_at       timestamptz NOT NULL DEFAULT now(),
    done_version     bigint,
    done_at          timestamptz,
    PRIMARY KEY (instance, key)
);

CREATE INDEX outbox_pending ON {schema}.outbox (emitted_at) WHERE done_version IS NULL;
