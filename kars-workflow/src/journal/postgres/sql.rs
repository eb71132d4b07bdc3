//! The store's statements, with the schema name filled in once.

use super::schema::Schema;

/// Every statement the store runs after migrating, for one schema.
#[derive(Debug)]
pub(super) struct Sql {
    /// `$1` instance, `$2` header; no row: it exists.
    pub create: String,
    /// The whole of an append, one statement: `$1` instance, `$2` expected version, `$3` record
    /// count, `$4` whether to set the next wake-up, `$5` the next wake-up, `$6` the payloads,
    /// `$7` the emitted keys, `$8` their effects as JSON text, `$9` the acknowledged keys,
    /// `$10` the channel to notify, `$11` whether to notify; the new version, or no row (and
    /// nothing written).
    pub append: String,
    /// As `append`, and `$12` epoch, `$13` owner: only under that unexpired lease.
    pub append_fenced: String,
    /// `$1` instance; its version.
    pub version: String,
    /// `$1` instance; version, epoch, owner, whether the lease is unexpired.
    pub lease_of: String,
    /// `$1` owner, `$2` how many, `$3` lease seconds, `$4` the instant timers are due by (null:
    /// the database's now), `$5` the seconds an effect is left to the writer that emitted it;
    /// claims due instances: instance, epoch.
    pub claim: String,
    /// `$1` owner, `$2` lease seconds; renews its unexpired leases: instance.
    pub renew: String,
    /// `$1` instance, `$2` owner, `$3` epoch, `$4` next wake as of version `$5`; ends that
    /// lease (the next wake-up set only if the version is still `$5`).
    pub release: String,
    /// `$1` instance, `$2` owner, `$3` epoch; ends that lease, the next wake-up unchanged.
    pub abandon: String,
    /// `$1` instance, `$2` next wake.
    pub set_next_wake: String,
    /// The advisory lock's name that maintenance runs under (`$1` of `try_lock`).
    pub maintenance_lock: String,
    /// `$1` lock name; whether this transaction took the advisory lock.
    pub try_lock: String,
    /// Frees every expired lease: instance, whether an effect is pending.
    pub rescue: String,
    /// `$1` instance; header, version, and the payloads below the version in order.
    pub read: String,
    /// `$1` instance, `$2` first sequence, `$3` count; those payloads in order.
    pub records_from: String,
    /// Every instance id.
    pub list: String,
    /// `$1` instance; its outbox rows by key.
    pub outbox: String,
}

impl Sql {
    pub fn new(schema: &Schema) -> Self {
        let s = schema.quoted();
        Self {
            create: format!(
                "INSERT INTO {s}.instances (instance, header) VALUES ($1, $2) ON CONFLICT (instance) DO NOTHING"
            ),
            append: append(s, ""),
            append_fenced: append(s, "AND epoch = $12 AND owner = $13 AND lease_expires_at > now()"),
            version: format!("SELECT version FROM {s}.instances WHERE instance = $1"),
            lease_of: format!(
                "SELECT version, epoch, owner, coalesce(lease_expires_at > now(), false) \
                 FROM {s}.instances WHERE instance = $1"
            ),
            // Due: a timer at or before the database's now, or an effect not acknowledged. An
            // effect emitted while no replica held the instance (by a writer without a lease,
            // the command line, which performs the effects it emits at once) is left to its
            // writer for `$5` seconds, so that a replica woken by that append does not perform
            // it too; one emitted under a lease since ended (a replica stopped, or gave it up)
            // is due at once.
            // Free: never leased, or its lease (or the pause an abandon set) is over on the
            // database's clock; a release ends the lease at once.
            // Takeovers first: an instance whose replica stopped holding it (its owner is still
            // set, its lease expired) was left midway, its effects late already; so is one with
            // an effect emitted under a lease that has ended and not acknowledged, whose owner a
            // maintenance pass cleared (`rescue`), which would otherwise wait behind every
            // instance never claimed. Then fair: the instances claimed least recently first (a
            // release keeps the instant).
            // Each kind of due is found from its own index (migration 2): the instances whose
            // timer is due walking `instances_claim_order`, which is in the claim order, up to
            // the batch; those with an effect pending from `outbox_pending_by_instance`. The
            // batch is the first of both in the claim order. A claim thus reads about a batch of
            // rows, not every instance (with a burst of due timers, a whole table per claim).
            claim: format!(
                "WITH timers AS ( \
                   SELECT i.instance, i.owner IS NULL AS unowned, i.lease_expires_at, i.next_wake \
                   FROM {s}.instances i \
                   WHERE i.next_wake <= coalesce($4::timestamptz, now()) \
                     AND (i.lease_expires_at IS NULL OR i.lease_expires_at <= now()) \
                   ORDER BY i.owner IS NULL, i.lease_expires_at NULLS FIRST, i.next_wake, i.instance \
                   LIMIT $2 \
                   FOR UPDATE SKIP LOCKED), \
                 effects AS ( \
                   SELECT i.instance, \
                     i.owner IS NULL AND NOT EXISTS (SELECT 1 FROM {s}.outbox o \
                       WHERE o.instance = i.instance AND o.done_version IS NULL \
                       AND o.emitted_at < i.lease_expires_at) AS unowned, \
                     i.lease_expires_at, i.next_wake \
                   FROM (SELECT DISTINCT p.instance FROM {s}.outbox p WHERE p.done_version IS NULL) pending \
                   JOIN {s}.instances i ON i.instance = pending.instance \
                   WHERE (i.lease_expires_at IS NULL OR i.lease_expires_at <= now()) AND EXISTS ( \
                     SELECT 1 FROM {s}.outbox o WHERE o.instance = i.instance AND o.done_version IS NULL \
                     AND (o.emitted_at < i.lease_expires_at \
                       OR o.emitted_at <= now() - make_interval(secs => $5))) \
                   ORDER BY 2, i.lease_expires_at NULLS FIRST, i.next_wake NULLS LAST, i.instance \
                   LIMIT $2 \
                   FOR UPDATE OF i SKIP LOCKED), \
                 due AS ( \
                   SELECT d.instance FROM (SELECT * FROM timers UNION SELECT * FROM effects) d \
                   ORDER BY d.unowned, d.lease_expires_at NULLS FIRST, d.next_wake NULLS LAST, d.instance \
                   LIMIT $2) \
                 UPDATE {s}.instances i SET owner = $1, epoch = i.epoch + 1, \
                   lease_expires_at = now() + make_interval(secs => $3) \
                 FROM due WHERE i.instance = due.instance \
                 RETURNING i.instance, i.epoch"
            ),
            renew: format!(
                "UPDATE {s}.instances SET lease_expires_at = now() + make_interval(secs => $2) \
                 WHERE owner = $1 AND lease_expires_at > now() RETURNING instance"
            ),
            release: format!(
                "UPDATE {s}.instances SET owner = NULL, lease_expires_at = now(), \
                 next_wake = CASE WHEN version = $5 THEN $4 ELSE next_wake END \
                 WHERE instance = $1 AND owner = $2 AND epoch = $3"
            ),
            abandon: format!(
                "UPDATE {s}.instances SET owner = NULL, lease_expires_at = now() + make_interval(secs => $4) \
                 WHERE instance = $1 AND owner = $2 AND epoch = $3"
            ),
            maintenance_lock: format!("kars.maintain.{}", schema.name()),
            try_lock: "SELECT pg_try_advisory_xact_lock(hashtext($1)::bigint)".to_owned(),
            rescue: format!(
                "UPDATE {s}.instances i SET owner = NULL \
                 WHERE i.owner IS NOT NULL AND i.lease_expires_at <= now() \
                 RETURNING i.instance, EXISTS (SELECT 1 FROM {s}.outbox o \
                   WHERE o.instance = i.instance AND o.done_version IS NULL)"
            ),
            set_next_wake: format!("UPDATE {s}.instances SET next_wake = $2 WHERE instance = $1"),
            read: format!(
                "SELECT i.header, i.version, ARRAY(SELECT r.payload FROM {s}.records r \
                 WHERE r.instance = i.instance AND r.sequence < i.version ORDER BY r.sequence) \
                 FROM {s}.instances i WHERE i.instance = $1"
            ),
            records_from: format!(
                "SELECT payload FROM {s}.records WHERE instance = $1 AND sequence >= $2 AND sequence < $2 + $3 \
                 ORDER BY sequence"
            ),
            list: format!("SELECT instance FROM {s}.instances"),
            outbox: format!(
                "SELECT key, emitted_version, done_version FROM {s}.outbox WHERE instance = $1 ORDER BY key"
            ),
        }
    }
}

/// The append statement for schema `s` (quoted), its compare-and-set on the version narrowed
/// by `fence`. One statement, one round trip: the version's compare-and-set (the instance's
/// row lock serializes appenders; under READ COMMITTED a waiting appender re-checks the version
/// and the lease against the winner's row and matches nothing), then, from its row only, the
/// records, the emitted effects (one also acknowledged in this append is stored done: the
/// parts of one statement do not see each other's rows), the acknowledgements, and a hint for
/// replicas that something may be due. Without the row, nothing is written.
fn append(s: &str, fence: &str) -> String {
    format!(
        "WITH bumped AS ( \
           UPDATE {s}.instances SET version = version + $3, updated_at = now(), \
             next_wake = CASE WHEN $4 THEN $5 ELSE next_wake END \
           WHERE instance = $1 AND version = $2 {fence} \
           RETURNING version), \
         stored AS ( \
           INSERT INTO {s}.records (instance, sequence, payload) \
           SELECT $1, $2 + r.ord - 1, r.payload \
           FROM bumped, unnest($6::bytea[]) WITH ORDINALITY AS r(payload, ord)), \
         emitted AS ( \
           INSERT INTO {s}.outbox (instance, key, effect, emitted_version, done_version, done_at) \
           SELECT $1, o.key, o.effect::jsonb, b.version, \
             CASE WHEN o.key = ANY($9::text[]) THEN b.version END, \
             CASE WHEN o.key = ANY($9::text[]) THEN now() END \
           FROM bumped b, unnest($7::text[], $8::text[]) AS o(key, effect) \
           ON CONFLICT (instance, key) DO NOTHING), \
         acknowledged AS ( \
           UPDATE {s}.outbox o SET done_version = b.version, done_at = now() FROM bumped b \
           WHERE o.instance = $1 AND o.key = ANY($9::text[]) AND o.done_version IS NULL) \
         SELECT b.version, CASE WHEN $11 THEN pg_notify($10, '') IS NULL END FROM bumped b"
    )
}
