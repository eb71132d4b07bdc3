//! Maintenance (`PgStore::maintain`): one replica at a time, under an advisory lock, frees the
//! leases that expired and names the instances left with effects pending; a live lease is kept.
#![cfg(feature = "postgres")]

use std::time::Duration;

use kars::workflow::InstanceId;
use kars::workflow::journal::postgres::{Maintenance, ReplicaId};
use kars::workflow::journal::{Outbox, OutboxEffect, PgStore, Store};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

#[test]
fn one_replica_at_a_time_frees_expired_leases_and_a_stale_release_then_changes_nothing() {
    let Some(db) = TestDb::new("maintain") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let (dead, live) = (id("effect"), id("timer"));
    store.create(&dead, b"h").unwrap();
    store.create(&live, b"h").unwrap();
    // `dead` has an effect not acknowledged (due without a timer), `live` a timer due.
    let emitted = [OutboxEffect { key: "dead/k", effect: br#"{"notify":1}"# }];
    store.append_with_outbox(&dead, 0, &[b"emitted"], Outbox { emitted: &emitted, ..Outbox::default() }).unwrap();
    store.set_next_wake(&live, Some("2000-01-01T00:00:00Z".parse().unwrap())).unwrap();

    let (stopped, running) = (ReplicaId::fresh(), ReplicaId::fresh());
    let lost = store.claim_due(&stopped, 1, Duration::from_millis(300)).unwrap();
    assert_eq!(lost.len(), 1);
    let kept = store.claim_due(&running, 1, Duration::from_secs(60)).unwrap();
    assert_eq!(kept.len(), 1);
    let pending = lost[0].instance == dead;
    std::thread::sleep(Duration::from_millis(500));

    // Another replica is maintaining (it holds the lock): this one skips and changes nothing.
    let lock = format!("kars.maintain.{}", db.schema);
    db.exec(&format!("SELECT pg_advisory_lock(hashtext('{lock}')::bigint)"));
    assert_eq!(store.maintain().unwrap(), None);
    let owned = format!("SELECT count(*) FROM \"{}\".instances WHERE owner IS NOT NULL", db.schema);
    assert_eq!(db.column_i64(&owned), [2]);

    db.exec(&format!("SELECT pg_advisory_unlock(hashtext('{lock}')::bigint)"));
    let done = store.maintain().unwrap();
    let rescued = vec![(lost[0].instance.clone(), pending)];
    assert_eq!(done, Some(Maintenance { rescued }), "only the expired lease, with whether an effect is pending");
    assert_eq!(db.column_i64(&owned), [1], "the live lease is kept");
    assert!(!store.release(&lost[0], None, 1).unwrap(), "the stopped replica's late release is a no-op");
    assert_eq!(store.maintain().unwrap(), Some(Maintenance::default()), "nothing left to rescue");

    // Several replicas at once: each pass either runs or is skipped, none fails.
    let passes: Vec<_> = (0..3)
        .map(|_| {
            let store = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
            std::thread::spawn(move || (0..20).map(|_| store.maintain().unwrap().is_some()).filter(|ran| *ran).count())
        })
        .collect();
    let ran: usize = passes.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(ran >= 1, "some pass ran");
}
