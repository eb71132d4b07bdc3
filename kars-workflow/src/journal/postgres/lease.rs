//! Leases for replicas sharing a store: a replica claims due instances with
//! `FOR UPDATE SKIP LOCKED`, for a time measured on the database's clock, under an epoch that
//! rises with every claim; every write through a [`FencedStore`] checks the lease, so a
//! replica that lost it (it stopped renewing, another claimed the instance) writes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::error::PgOperation;
use super::ops::{to_i64, version_of};
use super::{OwnedOutbox, PgStore, run};
use crate::InstanceId;
use crate::journal::{JournalError, Outbox, Store, Stored};

/// A replica's identity: fresh for every process start (the process id, random bits from the
/// operating system and a per-process counter), never configured, so two processes never share
/// one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplicaId(String);

impl ReplicaId {
    /// A new id for this process.
    #[must_use]
    pub fn fresh() -> Self {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // `RandomState`'s keys come from the operating system's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Self(format!(
            "{}-{:08x}-{}",
            std::process::id(),
            hasher.finish() as u32,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A claim on one instance: who holds it and under which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The instance.
    pub instance: InstanceId,
    /// The replica holding it.
    pub owner: ReplicaId,
    /// The claim's epoch: every claim of the instance raises it.
    pub epoch: u64,
}

fn seconds(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl PgStore {
    /// Claims up to `limit` instances that are due (a timer at or before the database's now,
    /// or an effect in the outbox not acknowledged) and free (never leased, released, or the
    /// lease expired on the database's clock), for `ttl`. Rows another replica is claiming at
    /// the same moment are skipped (`FOR UPDATE SKIP LOCKED`), so no instance is claimed twice.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn claim_due(&self, owner: &ReplicaId, limit: u32, ttl: Duration) -> Result<Vec<Lease>, JournalError> {
        self.claim_due_by(owner, limit, ttl, None)
    }

    /// As [`claim_due`](Self::claim_due), with timers due by `now` (`None`: the database's
    /// now): a replica passes the instant of the clock its drivers tick with, so that it
    /// claims no instance whose timer its driver would not fire yet (a virtual clock, or a
    /// replica's clock behind the database's). Leases are still measured on the database's
    /// clock.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn claim_due_by(
        &self,
        owner: &ReplicaId,
        limit: u32,
        ttl: Duration,
        now: Option<DateTime<Utc>>,
    ) -> Result<Vec<Lease>, JournalError> {
        let (shared, owner) = (Arc::clone(&self.shared), owner.clone());
        // A claim whose reply was lost holds its instances until the lease expires: they wait
        // at most one lease.
        run(&self.handle, async move {
            let grace = seconds(shared.effect_grace);
            let params: [&(dyn ToSql + Sync); 5] = [&owner.as_str(), &i64::from(limit), &seconds(ttl), &now, &grace];
            let rows = shared.rows(PgOperation::Claim, &shared.sql.claim, &params).await?;
            let mut leases = Vec::with_capacity(rows.len());
            for row in rows {
                let instance = InstanceId::new(row.get::<_, &str>(0))?;
                let epoch = version_of(&instance, row.get(1))?;
                leases.push(Lease { instance, owner: owner.clone(), epoch });
            }
            leases.sort_by(|a, b| a.instance.cmp(&b.instance));
            Ok(leases)
        })
    }

    /// The heartbeat: extends every unexpired lease `owner` holds by `ttl` from the
    /// database's now, and returns the instances it still holds. An expired lease is not
    /// renewed: it may belong to another replica already.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn renew(&self, owner: &ReplicaId, ttl: Duration) -> Result<Vec<InstanceId>, JournalError> {
        let (shared, owner) = (Arc::clone(&self.shared), owner.clone());
        run(&self.handle, async move {
            let rows = shared.rows(PgOperation::Claim, &shared.sql.renew, &[&owner.as_str(), &seconds(ttl)]).await?;
            let mut held = rows.iter().map(|r| InstanceId::new(r.get::<_, &str>(0))).collect::<Result<Vec<_>, _>>()?;
            held.sort();
            Ok(held)
        })
    }

    /// Gives `lease` up and records when the instance is next due (`next_wake`; `None`: no
    /// timer), as its driver computed it at version `seen`. An append that another writer
    /// (the command line, say, which needs no lease) made after `seen` recorded the next
    /// wake-up of a later state: that one stays. Returns whether the lease was still this
    /// one's: a stale release changes nothing.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn release(&self, lease: &Lease, next_wake: Option<DateTime<Utc>>, seen: u64) -> Result<bool, JournalError> {
        let (shared, lease) = (Arc::clone(&self.shared), lease.clone());
        run(&self.handle, async move {
            let epoch = to_i64(&lease.instance, lease.epoch)?;
            let seen = to_i64(&lease.instance, seen)?;
            // Releasing twice is releasing once: a retry after a lost reply says `false`.
            let params: [&(dyn ToSql + Sync); 5] =
                [&lease.instance.as_str(), &lease.owner.as_str(), &epoch, &next_wake, &seen];
            Ok(shared.execute(PgOperation::Claim, &shared.sql.release, &params).await? == 1)
        })
    }

    /// Gives `lease` up without driving the instance (a replica shutting down): its next
    /// wake-up stays as it was, and the instance is free to claim at once rather than when the
    /// lease would have expired. Returns whether the lease was still this one's.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn abandon(&self, lease: &Lease) -> Result<bool, JournalError> {
        self.abandon_for(lease, Duration::ZERO)
    }

    /// Gives `lease` up without driving the instance, and keeps every replica from claiming it
    /// for `pause` (a rehearsal no replica drives, or a drive that failed): unlike a lease
    /// kept, a pause is not extended by the owner's heartbeat. Returns whether the lease was
    /// still this one's.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn abandon_for(&self, lease: &Lease, pause: Duration) -> Result<bool, JournalError> {
        let (shared, lease) = (Arc::clone(&self.shared), lease.clone());
        run(&self.handle, async move {
            let epoch = to_i64(&lease.instance, lease.epoch)?;
            let params: [&(dyn ToSql + Sync); 4] =
                [&lease.instance.as_str(), &lease.owner.as_str(), &epoch, &seconds(pause)];
            Ok(shared.execute(PgOperation::Claim, &shared.sql.abandon, &params).await? == 1)
        })
    }

    /// Records when instance `id` is next due, for replicas to claim it then (a host that
    /// drives instances without a lease, like the command line, calls it after each change).
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn set_next_wake(&self, id: &InstanceId, at: Option<DateTime<Utc>>) -> Result<(), JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        run(&self.handle, async move {
            shared.execute(PgOperation::Append, &shared.sql.set_next_wake, &[&id.as_str(), &at]).await?;
            Ok(())
        })
    }

    /// This store, writing only under `lease`: a [`Store`] for a driver that a replica runs.
    #[must_use]
    pub fn fenced(&self, lease: Lease) -> FencedStore {
        FencedStore { store: self.clone(), lease }
    }
}

/// A [`PgStore`] whose appends check a [`Lease`] in the same statement that checks the
/// version: after the lease is lost, an append fails with
/// [`PgError::LeaseLost`](super::PgError::LeaseLost) and writes nothing. Reads are not fenced.
#[derive(Debug, Clone)]
pub struct FencedStore {
    store: PgStore,
    lease: Lease,
}

impl FencedStore {
    /// The lease it writes under.
    #[must_use]
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Store for FencedStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        self.store.create(id, header)
    }

    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        self.append_with_outbox(id, expected_version, records, Outbox::default())
    }

    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        self.store.read(id)
    }

    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        self.store.version(id)
    }

    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        self.store.list()
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    fn append_with_outbox(
        &self,
        id: &InstanceId,
        expected_version: u64,
        records: &[&[u8]],
        outbox: Outbox<'_>,
    ) -> Result<u64, JournalError> {
        let (shared, id, lease) = (Arc::clone(&self.store.shared), id.clone(), self.lease.clone());
        let records: Vec<Vec<u8>> = records.iter().map(|r| r.to_vec()).collect();
        let outbox = OwnedOutbox::new(outbox);
        run(&self.store.handle, async move {
            if lease.instance != id {
                return Err(super::PgError::LeaseLost { id, epoch: 0 }.into());
            }
            shared.append(&id, expected_version, &records, &outbox, Some(&lease)).await
        })
    }
}
