//! Replica leases in the PostgreSQL store: claims skip what another replica is claiming, leases
//! expire on the database's clock, and a write under a lost lease changes nothing.
#![cfg(feature = "postgres")]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use kars::workflow::InstanceId;
use kars::workflow::journal::postgres::{Lease, PgError, ReplicaId};
use kars::workflow::journal::{JournalError, Outbox, OutboxEffect, PgStore, Store};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

/// Long past on the database's clock.
fn past() -> Option<chrono::DateTime<Utc>> {
    Some("2000-01-01T00:00:00Z".parse().unwrap())
}

/// Far ahead on the database's clock.
fn future() -> Option<chrono::DateTime<Utc>> {
    Some("2999-01-01T00:00:00Z".parse().unwrap())
}

/// Instance `name`, created with a timer due, and claimed by a fresh replica for 30 s.
fn claimed_due(store: &PgStore, name: &str) -> (InstanceId, ReplicaId, Lease) {
    let x = id(name);
    store.create(&x, b"h").unwrap();
    store.set_next_wake(&x, past()).unwrap();
    let replica = ReplicaId::fresh();
    let lease = store.claim_due(&replica, 10, Duration::from_secs(30)).unwrap().remove(0);
    (x, replica, lease)
}

#[test]
fn a_stale_write_after_another_replica_took_the_lease_over_changes_nothing() {
    let Some(db) = TestDb::new("lease_stale") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let x = id("x");
    store.create(&x, b"h").unwrap();
    store.set_next_wake(&x, past()).unwrap();
    let (a, b) = (ReplicaId::fresh(), ReplicaId::fresh());
    assert_ne!(a, b, "every replica id is fresh");

    let leases = store.claim_due(&a, 10, Duration::from_millis(1500)).unwrap();
    assert_eq!(leases.len(), 1);
    let lease_a = leases[0].clone();
    assert_eq!((lease_a.instance.as_str(), lease_a.epoch), ("x", 1));
    assert!(store.claim_due(&b, 10, Duration::from_secs(30)).unwrap().is_empty(), "a live lease is not claimed");
    let as_a = store.fenced(lease_a.clone());
    assert_eq!(as_a.append(&x, 0, &[b"by a"]).unwrap(), 1);

    // A stops renewing; its lease expires on the database's clock and B takes the instance.
    std::thread::sleep(Duration::from_millis(1700));
    let leases = store.claim_due(&b, 10, Duration::from_secs(30)).unwrap();
    assert_eq!(leases.len(), 1);
    let lease_b = leases[0].clone();
    assert_eq!(lease_b.epoch, 2, "a takeover raises the epoch");

    // A's late write (an acknowledgement, say) is refused and writes nothing.
    let err = as_a.append(&x, 1, &[b"stale ack"]).unwrap_err();
    assert!(matches!(&err, JournalError::Postgres(e) if matches!(**e, PgError::LeaseLost { epoch: 1, .. })), "{err:?}");
    assert!(err.to_string().starts_with("this replica no longer holds the lease on instance `x` (epoch 1)"));
    assert_eq!(store.version(&x).unwrap(), 1);
    assert!(store.renew(&a, Duration::from_secs(30)).unwrap().is_empty(), "an expired lease is not renewed");
    assert!(!store.release(&lease_a, None, 1).unwrap(), "a stale release changes nothing");

    // B holds it still, writes, renews and releases.
    let as_b = store.fenced(lease_b.clone());
    assert_eq!(as_b.append(&x, 1, &[b"by b"]).unwrap(), 2);
    assert_eq!(store.renew(&b, Duration::from_secs(30)).unwrap(), std::slice::from_ref(&x));
    assert_eq!(store.read(&x).unwrap().records, [b"by a".to_vec(), b"by b".to_vec()]);
    assert!(store.release(&lease_b, None, 2).unwrap());
    assert!(store.claim_due(&a, 10, Duration::from_secs(30)).unwrap().is_empty(), "no timer, nothing pending");
    let err = as_b.append(&x, 2, &[b"after release"]).unwrap_err();
    assert!(matches!(&err, JournalError::Postgres(e) if matches!(**e, PgError::LeaseLost { epoch: 2, .. })), "{err:?}");
}

#[test]
fn replicas_claiming_at_once_never_claim_an_instance_twice() {
    let Some(db) = TestDb::new("lease_skip_locked") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let all: BTreeSet<String> = (0..60).map(|i| format!("i{i:02}")).collect();
    for name in &all {
        store.create(&id(name), b"h").unwrap();
        store.set_next_wake(&id(name), past()).unwrap();
    }
    // Not due: a timer in the future. Due: an effect not acknowledged in the outbox.
    store.create(&id("later"), b"h").unwrap();
    store.set_next_wake(&id("later"), future()).unwrap();
    store.create(&id("effect"), b"h").unwrap();
    let emitted = [OutboxEffect { key: "effect/1", effect: br#"{"k":1}"# }];
    store.append_with_outbox(&id("effect"), 0, &[b"r"], Outbox { emitted: &emitted, ..Outbox::default() }).unwrap();

    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let store = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
            std::thread::spawn(move || {
                let me = ReplicaId::fresh();
                let mut mine = Vec::new();
                loop {
                    let claimed = store.claim_due(&me, 5, Duration::from_secs(30)).unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    assert!(claimed.iter().all(|l| l.owner == me && l.epoch == 1));
                    mine.extend(claimed.into_iter().map(|l| l.instance.to_string()));
                }
            })
        })
        .collect();
    let mut claimed: Vec<String> = replicas.into_iter().flat_map(|r| r.join().unwrap()).collect();
    claimed.sort();
    let mut expected: Vec<String> = all.into_iter().collect();
    expected.push("effect".into());
    expected.sort();
    assert_eq!(claimed, expected, "each due instance claimed exactly once; `later` not at all");
}

/// An instance a replica gave up without driving (a rehearsal, a failed drive) is paused for a
/// while: no replica claims it meanwhile, the owner's heartbeat does not extend the pause, and
/// it is claimed again once the pause is over.
#[test]
fn a_paused_instance_is_not_renewed_and_is_claimed_again_after_its_pause() {
    let Some(db) = TestDb::new("lease_pause") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let (_, a, lease) = claimed_due(&store, "x");
    assert!(store.abandon_for(&lease, Duration::from_millis(1200)).unwrap());
    assert!(store.renew(&a, Duration::from_secs(30)).unwrap().is_empty(), "a pause is not a lease to renew");
    assert!(store.claim_due(&a, 10, Duration::from_secs(30)).unwrap().is_empty(), "paused");
    std::thread::sleep(Duration::from_millis(1400));
    let again = store.claim_due(&ReplicaId::fresh(), 10, Duration::from_secs(30)).unwrap();
    assert_eq!(again.len(), 1, "claimed again once the pause is over");
    assert_eq!(again[0].epoch, 2);
}

/// An effect is left to the writer whose append emitted it (the command line performs its
/// effects at once) for the store's grace: a replica woken by that append does not claim the
/// instance for it meanwhile, and does once the grace is over (at least once).
#[test]
fn a_new_effect_is_left_to_its_writer_for_the_grace_then_claimed() {
    let Some(db) = TestDb::new("lease_grace") else { return };
    let store = PgStore::connect(&db.url, &db.config().with_effect_grace(Duration::from_millis(1500))).unwrap();
    let x = id("x");
    store.create(&x, b"h").unwrap();
    let emitted = [OutboxEffect { key: "x/1", effect: br#"{"k":1}"# }];
    store.append_with_outbox(&x, 0, &[b"r"], Outbox { emitted: &emitted, ..Outbox::default() }).unwrap();
    let a = ReplicaId::fresh();
    assert!(store.claim_due(&a, 10, Duration::from_secs(30)).unwrap().is_empty(), "the writer's to perform");
    std::thread::sleep(Duration::from_millis(1700));
    let claimed = store.claim_due(&a, 10, Duration::from_secs(30)).unwrap();
    assert_eq!(claimed.len(), 1, "its writer did not acknowledge it: a replica performs it");
    // Acknowledged by its writer in time: nothing to claim.
    let y = id("y");
    store.create(&y, b"h").unwrap();
    let emitted = [OutboxEffect { key: "y/1", effect: br#"{"k":1}"# }];
    store.append_with_outbox(&y, 0, &[b"r"], Outbox { emitted: &emitted, ..Outbox::default() }).unwrap();
    store.append_with_outbox(&y, 1, &[b"done"], Outbox { done: &["y/1"], ..Outbox::default() }).unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    assert!(store.claim_due(&a, 10, Duration::from_secs(30)).unwrap().is_empty(), "performed once, by its writer");
    // Emitted under a lease that then expired (its replica stopped): due at once, no grace.
    let z = id("z");
    store.create(&z, b"h").unwrap();
    store.set_next_wake(&z, past()).unwrap();
    let stopped = store.claim_due(&ReplicaId::fresh(), 10, Duration::from_millis(300)).unwrap().remove(0);
    let emitted = [OutboxEffect { key: "z/1", effect: br#"{"k":1}"# }];
    let outbox = Outbox { emitted: &emitted, next_wake: kars::workflow::journal::NextWake::Never, ..Outbox::default() };
    store.fenced(stopped).append_with_outbox(&z, 0, &[b"r"], outbox).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let claimed = store.claim_due(&a, 10, Duration::from_secs(30)).unwrap();
    assert_eq!(claimed.iter().map(|l| l.instance.as_str()).collect::<Vec<_>>(), ["z"], "taken over at once");
}

/// A release does not overwrite the next wake-up that a writer without a lease recorded after
/// the replica's driver last read the instance: the latest state's wake-up stays.
#[test]
fn a_release_keeps_the_next_wake_of_a_later_unfenced_append() {
    let Some(db) = TestDb::new("lease_release_wake") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let (x, a, lease) = claimed_due(&store, "x");
    assert_eq!(store.fenced(lease.clone()).append(&x, 0, &[b"by a"]).unwrap(), 1);
    // The command line appends (no lease), with the wake-up of its new state.
    let soon: chrono::DateTime<Utc> = "2001-01-01T00:00:00Z".parse().unwrap();
    let outbox = Outbox { next_wake: kars::workflow::journal::NextWake::At(soon), ..Outbox::default() };
    assert_eq!(store.append_with_outbox(&x, 1, &[b"by the cli"], outbox).unwrap(), 2);
    // The replica releases with the wake-up its driver computed at version 1.
    assert!(store.release(&lease, future(), 1).unwrap());
    let wake = format!("SELECT extract(epoch FROM next_wake)::bigint FROM \"{}\".instances", db.schema);
    assert_eq!(db.column_i64(&wake), [soon.timestamp()], "the later writer's wake-up stays");
    let lease = store.claim_due(&a, 10, Duration::from_secs(30)).unwrap().remove(0);
    // A release at the current version records its wake-up.
    assert!(store.release(&lease, future(), 2).unwrap());
    assert_eq!(db.column_i64(&wake), [future().unwrap().timestamp()]);
}

/// An instance a stopped replica left with an effect pending is claimed before the instances
/// never claimed, also once a maintenance pass has cleared its owner (which is what marked it
/// as a takeover before).
#[test]
fn a_takeover_is_claimed_first_also_after_a_maintenance_pass_freed_it() {
    let Some(db) = TestDb::new("lease_takeover_first") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let z = id("z");
    store.create(&z, b"h").unwrap();
    store.set_next_wake(&z, past()).unwrap();
    let stopped = store.claim_due(&ReplicaId::fresh(), 1, Duration::from_millis(300)).unwrap().remove(0);
    let emitted = [OutboxEffect { key: "z/1", effect: br#"{"k":1}"# }];
    let outbox = Outbox { emitted: &emitted, next_wake: kars::workflow::journal::NextWake::Never, ..Outbox::default() };
    store.fenced(stopped).append_with_outbox(&z, 0, &[b"r"], outbox).unwrap();
    // Never claimed (first in the fair order), each with an effect its writer left.
    for name in ["a", "b", "c"] {
        let x = id(name);
        store.create(&x, b"h").unwrap();
        let key = format!("{name}/1");
        let emitted = [OutboxEffect { key: &key, effect: br#"{"k":1}"# }];
        store.append_with_outbox(&x, 0, &[b"r"], Outbox { emitted: &emitted, ..Outbox::default() }).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    let maintained = store.maintain().unwrap().expect("no other pass runs");
    assert_eq!(maintained.rescued, [(z.clone(), true)], "its owner is cleared, its effect pending");
    let claimed = store.claim_due(&ReplicaId::fresh(), 1, Duration::from_secs(30)).unwrap();
    assert_eq!(claimed.iter().map(|l| l.instance.as_str()).collect::<Vec<_>>(), ["z"], "left midway: first");
    let rest = store.claim_due(&ReplicaId::fresh(), 10, Duration::from_secs(30)).unwrap();
    assert_eq!(rest.iter().map(|l| l.instance.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
}
