-- kars database schema version 2: indexes that let a claim find the due instances without
-- reading every instance. `{schema}` is replaced by the store's (quoted) schema name.

-- The instances with a timer, in the order replicas claim them (takeovers first, then the
-- instances claimed least recently), with the instant each is due: a claim walks it in order,
-- reading the index entries of the instances whose timer is not due yet and the rows of those
-- that are, and stops at its batch. Without it a claim read and sorted every instance, so a
-- burst of due timers (thousands at one instant) cost a whole table per claim.
CREATE INDEX instances_claim_order ON {schema}.instances
    ((owner IS NULL), lease_expires_at NULLS FIRST, next_wake, instance)
    WHERE next_wake IS NOT NULL;

-- The effects not acknowledged, by instance: a claim reads the instances with one from it,
-- and asks for each instance whether one is pending without reading its acknowledged rows.
-- It replaces the index by emission instant, which no statement used.
CREATE INDEX outbox_pending_by_instance ON {schema}.outbox (instance, emitted_at) WHERE done_version IS NULL;
DROP INDEX {schema}.outbox_pending;
