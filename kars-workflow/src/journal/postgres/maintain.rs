//! Maintenance: one replica at a time (a transaction-scoped advisory lock per schema) frees
//! the leases that expired, those of replicas that stopped without releasing (killed, cut
//! off), and reports which of those instances were left with effects not acknowledged.
//!
//! Claiming does not wait for it: [`PgStore::claim_due`] takes an expired lease over by
//! itself, so a rescue only makes `owner` say the truth sooner (`kars instance list`) and
//! names the instances a stopped replica left midway; one left with an effect pending keeps
//! its place at the head of the claim order (an effect emitted under a lease that ended marks
//! it, not its owner). Nothing is pruned: records are the
//! journal, and an acknowledged outbox row is what keeps a key from being inserted (and
//! performed) again, so neither is safe to delete.

use std::sync::Arc;

use super::error::PgOperation;
use super::{PgStore, run};
use crate::InstanceId;
use crate::journal::JournalError;

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Instances whose expired lease was freed, with whether an effect was left pending.
    pub rescued: Vec<(InstanceId, bool)>,
}

impl PgStore {
    /// Runs one maintenance pass unless another replica is running one: then `None`, and
    /// nothing is done. A pass (one replica at a time, under a transaction-scoped advisory
    /// lock per schema) frees the leases that expired and reports which of those instances
    /// were left with effects not acknowledged. Nothing is pruned: records are the journal,
    /// and an acknowledged outbox row keeps its key from being performed again.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn maintain(&self) -> Result<Option<Maintenance>, JournalError> {
        let shared = Arc::clone(&self.shared);
        run(&self.handle, async move {
            let op = PgOperation::Claim;
            shared
                .retrying(|| async {
                    let mut client = shared.client(op).await?;
                    let tx = client.transaction().await.map_err(super::ops::query(op))?;
                    let locked: bool = tx
                        .query_one(&shared.sql.try_lock, &[&shared.sql.maintenance_lock])
                        .await
                        .map_err(super::ops::query(op))?
                        .get(0);
                    if !locked {
                        return Ok(None);
                    }
                    let rows = tx.query(&shared.sql.rescue, &[]).await.map_err(super::ops::query(op))?;
                    let mut rescued = Vec::with_capacity(rows.len());
                    for row in rows {
                        rescued.push((InstanceId::new(row.get::<_, &str>(0))?, row.get::<_, bool>(1)));
                    }
                    tx.commit().await.map_err(super::ops::query(op))?;
                    rescued.sort();
                    Ok(Some(Maintenance { rescued }))
                })
                .await
        })
    }
}
