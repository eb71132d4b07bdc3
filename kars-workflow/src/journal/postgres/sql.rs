//! The store's statements, with the schema name filled in once.

use super::schema::Schema;

/// Every statement the store runs after migrating, for one schema.
#[derive(Debug)]
pub(super) struct Sql {
    /// `$1` instance, `$2` header; no row: it exists.
    pub create: String,
    /// `$1` instance, `$2` expected version, `$3` record count, `$4` whether to set the next
    /// wake-up, `$5` the next wake-up; the new version, or no row.
    pub bump: String,
    /// As `bump`, and `$6` epoch, `$7` owner: only under that unexpired lease.
    pub bump_fenced: String,
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
    /// `$1` instance, `$2` expected version (the first record's sequence), `$3` payloads.
    pub insert_records: String,
    /// `$1` instance, `$2` keys, `$3` effects as JSON text, `$4` the new version.
    pub insert_outbox: String,
    /// `$1` instance, `$2` keys, `$3` the new version.
    pub mark_done: String,
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
            bump: format!(
                "UPDATE {s}.instances SET version = version + $3, updated_at = now(), \
                 next_wake = CASE WHEN $4 THEN $5 ELSE next_wake END \
                 WHERE instance = $1 AND version = $2 RETURNING version"
            ),
            bump_fenced: format!(
                "UPDATE {s}.instances SET version = version + $3, updated_at = now(), \
                 next_wake = CASE WHEN $4 THEN $5 ELSE next_wake END \
                 WHERE instance = $1 AND version = $2 AND epoch = $6 AND owner = $7 AND lease_expires_at > now() \
                 RETURNING version"
            ),
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
            // set, its lease expired) was left midway, its effects late already. Then fair: the
            // instances claimed least recently first (a release keeps the instant).
            claim: format!(
                "WITH due AS ( \
                   SELECT i.instance FROM {s}.instances i \
                   WHERE (i.lease_expires_at IS NULL OR i.lease_expires_at <= now()) \
                     AND (i.next_wake <= coalesce($4::timestamptz, now()) OR EXISTS ( \
                       SELECT 1 FROM {s}.outbox o WHERE o.instance = i.instance AND o.done_version IS NULL \
                       AND (o.emitted_at < i.lease_expires_at \
                         OR o.emitted_at <= now() - make_interval(secs => $5)))) \
                   ORDER BY i.owner IS NULL, i.lease_expires_at NULLS FIRST, i.next_wake NULLS LAST, i.instance \
                   LIMIT $2 \
                   FOR UPDATE SKIP LOCKED) \
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
            insert_records: format!(
                "INSERT INTO {s}.records (instance, sequence, payload) \
                 SELECT $1, $2 + r.ord - 1, r.payload FROM unnest($3::bytea[]) WITH ORDINALITY AS r(payload, ord)"
            ),
            insert_outbox: format!(
                "INSERT INTO {s}.outbox (instance, key, effect, emitted_version) \
                 SELECT $1, o.key, o.effect::jsonb, $4 FROM unnest($2::text[], $3::text[]) AS o(key, effect) \
                 ON CONFLICT (instance, key) DO NOTHING"
            ),
            mark_done: format!(
                "UPDATE {s}.outbox SET done_version = $3, done_at = now() \
                 WHERE instance = $1 AND key = ANY($2) AND done_version IS NULL"
            ),
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
