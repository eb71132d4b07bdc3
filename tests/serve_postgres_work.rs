//! Replicas of `kars serve` on one PostgreSQL schema share the timers and effects
//! (`App::start_sharing_work`: one embedded worker each, leases, the outbox): people act
//! through either replica, each effect reaches the adapters of one replica only, timers fire
//! with no request, and a replica that stops gives the instances it claimed to the other at
//! once. Each replica has its own recording adapters, as two processes would. Skipped with the
//! reason printed when no PostgreSQL answers, unless `KARS_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "serve", feature = "postgres"))]
// Waits are bounded on the real clock (the replicas run on threads and on the database).
#![allow(clippy::disallowed_methods)]

mod serve_support;

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kars::serve::{App, AppParts, SharedWork, SpecSource};
use kars::workflow::adapter::{AdapterError, Notification, Notifier};
use kars::workflow::driver::{
    Adapters, ClockMode, Driver, DriverConfig, Operation, Operations, Parts, Program, SpecText, Start, VirtualClock,
};
use kars::workflow::journal::PgStore;
use kars::workflow::service::VirtualTimer;
use kars::workflow::worker::WorkerConfig;
use kars::workflow::{ActionOutcome, InstanceId};
use serde_json::{Value, json};
use serve_support::{Reply, SPEC, local, request, token, token_settings};
use support::TestDb;

/// What one replica's adapters were asked to do: every call's key, duplicates included. While
/// `held`, a call waits (an adapter that hangs), after being recorded.
#[derive(Default)]
struct Calls {
    keys: Mutex<Vec<String>>,
    held: AtomicBool,
}

impl Calls {
    fn held() -> Arc<Self> {
        let calls = Self::default();
        calls.held.store(true, Ordering::SeqCst);
        Arc::new(calls)
    }

    fn record(&self, key: &str) {
        self.keys.lock().unwrap().push(key.to_owned());
        while self.held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

impl Notifier for Calls {
    fn notify(&self, n: &Notification) -> Result<(), AdapterError> {
        self.record(&n.key);
        Ok(())
    }
}

/// Merges succeed at once; deploys wait for the person the spec names to report them.
impl Operations for Calls {
    fn run(&self, op: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        self.record(&op.key);
        Ok(match op.node.as_str() {
            "H" | "Y" | "AB" | "AD" => None,
            _ => Some(ActionOutcome::Succeeded),
        })
    }
}

/// One replica: its own connections, listener, worker and adapters.
struct Replica {
    addr: SocketAddr,
    calls: Arc<Calls>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), kars::serve::ServeError>>,
}

impl Replica {
    async fn start(db: &TestDb, clock: &Arc<VirtualClock>, calls: Arc<Calls>) -> Self {
        let store = PgStore::connect(&db.url, &db.config().with_pool_size(6)).unwrap();
        let adapters = {
            let calls = Arc::clone(&calls);
            Arc::new(move |_: &InstanceId, _: &Program| {
                Adapters::new(Arc::clone(&calls)).with_operations(Arc::clone(&calls))
            })
        };
        let parts = AppParts {
            store: store.clone(),
            clock: clock.clone(),
            timer: Arc::new(VirtualTimer::new(Arc::clone(clock))),
            // Real instances (rehearsals are not shared), on a clock the test moves.
            mode: ClockMode::System,
            specs: vec![SpecSource { origin: "kars-release.yaml".to_owned(), text: SPEC.to_owned() }],
            settings: token_settings(),
            adapters,
        };
        // Leases far longer than the test waits: a takeover within the test is a release.
        let config = WorkerConfig { lease: Duration::from_secs(30), batch: 16, poll: Duration::from_millis(50) };
        let app = App::start_sharing_work(parts, SharedWork { store, config }).await.unwrap();
        assert!(app.replica().is_some(), "the replica runs a worker");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(kars::serve::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Self { addr, calls, stop, task }
    }

    /// Stops gracefully: the worker finishes the instance in hand and gives up the rest.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    async fn post(&self, person: &str, path: &str, body: &Value) -> Reply {
        let headers =
            [("Authorization", format!("Bearer {}", token(person))), ("Content-Type", "application/json".to_owned())];
        request(self.addr, "POST", path, &headers, body.to_string().as_bytes()).await
    }

    async fn get(&self, path: &str) -> Value {
        let reply =
            request(self.addr, "GET", path, &[("Authorization", format!("Bearer {}", token("carol")))], b"").await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.json()
    }

    /// `person` acts (or reports, for `report`) on `node`: accepted.
    async fn write(&self, what: &str, person: &str, id: &str, node: &str, outcome: Option<&str>) {
        let body = json!({ "node": node, "outcome": outcome });
        let reply = self.post(person, &format!("/api/instances/{id}/{what}"), &body).await;
        assert_eq!(reply.status, 200, "{person} on {node}: {}", reply.body);
    }
}

/// Waits (20 s at most) until instance `id` has no effect left in the outbox and no timer due
/// by `now`, as `replica` sees it; returns its status.
async fn settle(probe: &PgStore, replica: &Replica, id: &str, now: DateTime<Utc>) -> Value {
    let instance = InstanceId::new(id).unwrap();
    let started = Instant::now();
    loop {
        let status = replica.get(&format!("/api/instances/{id}")).await;
        let due = status["next_timer"].as_str().is_some_and(|t| t.parse::<DateTime<Utc>>().unwrap() <= now);
        let pending = probe.outbox(&instance).unwrap().iter().any(|row| row.done_version.is_none());
        if !due && !pending {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "`{id}` did not settle at {now}: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every key of `ids`' outboxes, each with its instance.
fn outbox_keys(probe: &PgStore, ids: &[&str]) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for id in ids {
        for row in probe.outbox(&InstanceId::new(*id).unwrap()).unwrap() {
            assert!(row.done_version.is_some(), "`{}` of `{id}` is not acknowledged", row.key);
            keys.insert(row.key, (*id).to_owned());
        }
    }
    keys
}

/// The effects (outbox keys) that the adapters' `calls` performed, in order, after checking
/// that no call was made twice: an operation's key is the effect's, a notification's is the
/// effect's followed by `/` and its audience.
fn performed(keys: &BTreeMap<String, String>, calls: &[&[String]]) -> Vec<String> {
    let calls: Vec<&String> = calls.iter().flat_map(|c| c.iter()).collect();
    let distinct: BTreeSet<&String> = calls.iter().copied().collect();
    assert_eq!(distinct.len(), calls.len(), "a call was made twice: {calls:?}");
    let effect_of = |call: &String| {
        let found =
            keys.keys().find(|k| call == *k || call.strip_prefix(k.as_str()).is_some_and(|r| r.starts_with('/')));
        found.unwrap_or_else(|| panic!("`{call}` is no effect of the outbox {keys:?}")).clone()
    };
    let effects: BTreeSet<String> = calls.into_iter().map(effect_of).collect();
    effects.into_iter().collect()
}

/// [`TestDb::column_i64`] from async code (it blocks on a runtime of its own).
fn column(db: &TestDb, sql: &str) -> Vec<i64> {
    std::thread::scope(|s| s.spawn(|| db.column_i64(sql)).join().unwrap())
}

/// How many leases are held (unexpired) in the schema.
fn live_leases(db: &TestDb) -> i64 {
    column(db, &format!("SELECT count(*) FROM \"{}\".instances WHERE lease_expires_at > now()", db.schema))[0]
}

/// Lets held calls go when dropped: a failing test does not hang on them.
struct LetGo(Arc<Calls>);

impl Drop for LetGo {
    fn drop(&mut self) {
        self.0.held.store(false, Ordering::SeqCst);
    }
}

#[test]
fn two_replicas_fire_each_timer_and_perform_each_effect_once() {
    let Some(db) = TestDb::new("serve_work") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
        let probe = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
        let first = Replica::start(&db, &clock, Arc::new(Calls::default())).await;
        let second = Replica::start(&db, &clock, Arc::new(Calls::default())).await;
        let id = "kars-48";
        let at = |t: &str| {
            let t = local(t);
            clock.set(t);
            t
        };

        let started = first.post("frank", "/api/instances", &json!({ "workflow": "kars-release", "id": id })).await;
        assert_eq!(started.status, 201, "{}", started.body);
        let now = at("2026-11-23 09:00");
        first.write("act", "erin", id, "B", None).await;
        settle(&probe, &first, id, now).await;
        second.write("act", "frank", id, "C", None).await;
        settle(&probe, &second, id, now).await;

        // Tuesday 09:00: D's gate opens with no request (a worker fires the timer).
        let now = at("2026-11-24 09:00");
        let status = settle(&probe, &second, id, now).await;
        assert_eq!(status["node"], "D", "{status}");
        first.write("act", "alice", id, "D", None).await;
        settle(&probe, &first, id, now).await;
        second.write("act", "alice", id, "E", None).await;
        settle(&probe, &second, id, now).await;
        // The review approves: a worker merges (G) and starts the dev deploy (H), which DevOps
        // reports through the other replica.
        first.write("act", "bob", id, "F", Some("approved")).await;
        let status = settle(&probe, &first, id, now).await;
        assert_eq!(status["node"], "H", "{status}");
        second.write("report", "dave", id, "H", Some("succeeded")).await;
        settle(&probe, &second, id, now).await;

        // Thursday: the PM reviews at 09:00; at 17:00 the freeze is announced (J's gate, then
        // its notification), with no request.
        let now = at("2026-11-26 09:00");
        settle(&probe, &first, id, now).await;
        first.write("act", "erin", id, "I", None).await;
        settle(&probe, &first, id, now).await;
        let now = at("2026-11-26 17:00");
        let status = settle(&probe, &second, id, now).await;
        assert_eq!(status["node"], "K", "{status}");
        second.write("act", "erin", id, "K", None).await;
        settle(&probe, &second, id, now).await;

        // Every effect was performed by one replica, once: the merge, the deploy, the
        // announcement among them.
        let keys = outbox_keys(&probe, &[id]);
        assert!(keys.len() >= 3, "the merge, the deploy and the announcement: {keys:?}");
        let (one, two) = (first.calls.keys(), second.calls.keys());
        let expected: Vec<String> = keys.keys().cloned().collect();
        assert_eq!(performed(&keys, &[&one, &two]), expected, "first {one:?}, second {two:?}");

        // The history is whole: every record once, in order; each effect acknowledged once;
        // each person's input once.
        let history = first.get(&format!("/api/instances/{id}/history?limit=1000")).await;
        let entries = history["entries"].as_array().unwrap();
        assert_eq!(Some(entries.len() as u64), history["version"].as_u64(), "{history}");
        let records = column(
            &db,
            &format!("SELECT count(DISTINCT sequence) FROM \"{}\".records WHERE instance = '{id}'", db.schema),
        );
        assert_eq!(records, [entries.len() as i64], "one record per version");
        let mut acknowledged: Vec<String> =
            entries.iter().filter_map(|e| e["entry"]["done"]["key"].as_str().map(str::to_owned)).collect();
        acknowledged.sort();
        assert_eq!(acknowledged, expected, "each effect acknowledged once");
        let completes: Vec<&str> =
            entries.iter().filter_map(|e| e["entry"]["input"]["input"]["event"]["complete"]["node"].as_str()).collect();
        assert_eq!(completes, ["B", "C", "D", "E", "F", "I", "K"], "{history}");

        first.stop().await;
        second.stop().await;
        assert_eq!(live_leases(&db), 0, "a graceful stop leaves no lease behind");
    });
}

#[test]
fn a_replica_that_stops_hands_the_instances_it_claimed_to_the_other() {
    let Some(db) = TestDb::new("serve_takeover") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let clock = Arc::new(VirtualClock::new(local("2026-11-23 09:00")));
        let probe = PgStore::connect(&db.url, &db.config().with_pool_size(2)).unwrap();
        // Three instances whose merge (G) waits in the outbox, written without a replica (as
        // `kars instance act --store` would, without performing it).
        let ids = ["take-a", "take-b", "take-c"];
        let spec = kars::spec::load(SPEC, "kars-release.yaml").unwrap();
        let program = Program::new(&spec).unwrap();
        for id in ids {
            clock.set(local("2026-11-23 09:00"));
            let parts = Parts {
                store: probe.clone(),
                clock: Arc::clone(&clock),
                adapters: Adapters::new(Arc::new(Calls::default())),
                config: DriverConfig::for_clock(ClockMode::System),
            };
            let text = SpecText { origin: "kars-release.yaml".to_owned(), text: SPEC.to_owned() };
            let start = Start { spec: Some(text), clock: ClockMode::System, roster: None };
            let (mut driver, _) = Driver::create_with(parts, &program, &InstanceId::new(id).unwrap(), start).unwrap();
            let steps = [
                ("2026-11-23 09:00", "B", "erin"),
                ("2026-11-23 09:30", "C", "frank"),
                ("2026-11-24 10:00", "D", "alice"),
                ("2026-11-24 10:00", "E", "alice"),
            ];
            for (at, node, person) in steps {
                clock.set(local(at));
                let actor = driver.roster().actor(person).unwrap();
                driver.act(actor, node.parse().unwrap(), None).unwrap();
            }
            let actor = driver.roster().actor("bob").unwrap();
            driver.act(actor, "F".parse().unwrap(), Some("approved")).unwrap();
            assert_eq!(driver.pending_effects().count(), 1, "`{id}`: the merge waits");
        }

        // The first replica claims the three at once, and its adapter hangs on the first merge.
        let first = Replica::start(&db, &clock, Calls::held()).await;
        let _let_go = LetGo(Arc::clone(&first.calls));
        let started = Instant::now();
        while first.calls.keys().is_empty() {
            assert!(started.elapsed() < Duration::from_secs(20), "the first replica never performed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let a = outbox_keys_pending(&probe, "take-a");
        assert_eq!(first.calls.keys(), a, "the first replica performs take-a first");
        assert_eq!(live_leases(&db), 3, "it holds the three instances");

        // The second replica waits for the leases meanwhile.
        let second = Replica::start(&db, &clock, Arc::new(Calls::default())).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(second.calls.keys(), Vec::<String>::new(), "the second replica took a leased instance");

        // The first replica is asked to stop; its listener closes, then its worker is told.
        let (addr, calls) = (first.addr, Arc::clone(&first.calls));
        let stopping = tokio::spawn(first.stop());
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The merge in hand completes; take-b and take-c are given up, and the second replica
        // performs them at once, long before the first replica's leases would expire.
        let released = Instant::now();
        calls.held.store(false, Ordering::SeqCst);
        stopping.await.unwrap();
        let keys = loop {
            let done = ids.iter().all(|id| {
                probe.outbox(&InstanceId::new(*id).unwrap()).unwrap().iter().all(|r| r.done_version.is_some())
            });
            if done {
                break outbox_keys(&probe, &ids);
            }
            assert!(released.elapsed() < Duration::from_secs(20), "the second replica never took over");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(released.elapsed() < Duration::from_secs(30), "taken over only once the leases expired");

        // take-a's effects on the first replica, take-b's and take-c's on the second; each once.
        let by_instance =
            |calls: &[String]| performed(&keys, &[calls]).iter().map(|k| keys[k].clone()).collect::<BTreeSet<_>>();
        let (one, two) = (calls.keys(), second.calls.keys());
        assert_eq!(by_instance(&one), BTreeSet::from(["take-a".to_owned()]), "{one:?}");
        assert_eq!(by_instance(&two), BTreeSet::from(["take-b".to_owned(), "take-c".to_owned()]), "{two:?}");
        assert_eq!(performed(&keys, &[&one, &two]), keys.keys().cloned().collect::<Vec<_>>(), "{one:?} {two:?}");

        second.stop().await;
        assert_eq!(live_leases(&db), 0, "a graceful stop leaves no lease behind");
    });
}

/// The keys of `id`'s outbox not acknowledged yet.
fn outbox_keys_pending(probe: &PgStore, id: &str) -> Vec<String> {
    let rows = probe.outbox(&InstanceId::new(id).unwrap()).unwrap();
    rows.into_iter().filter(|r| r.done_version.is_none()).map(|r| r.key).collect()
}
