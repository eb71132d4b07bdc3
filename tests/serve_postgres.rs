//! `kars serve` on the PostgreSQL store (features `serve` and `postgres`): two replicas of the
//! service on one schema, each on an ephemeral port. People act through either; a refusal
//! writes nothing to the database; each replica sees the other's writes, and an expected
//! version that another replica made stale is a 409. Skipped with the reason printed when no
//! PostgreSQL answers, unless `KARS_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "serve", feature = "postgres"))]

mod serve_support;

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use kars::serve::{App, AppParts, Sharing, SpecSource};
use kars::workflow::InstanceId;
use kars::workflow::driver::{ClockMode, VirtualClock};
use kars::workflow::journal::{PgStore, Store};
use kars::workflow::service::VirtualTimer;
use serde_json::{Value, json};
use serve_support::{Reply, SPEC, adapters, local, request, token, token_settings};
use support::TestDb;

/// One replica of the service: its own store connection pool, its own listener.
struct Replica {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), kars::serve::ServeError>>,
}

impl Replica {
    async fn start(db: &TestDb, clock: &Arc<VirtualClock>) -> Self {
        let store = PgStore::connect(&db.url, &db.config().with_pool_size(4)).unwrap();
        let parts = AppParts {
            store,
            clock: clock.clone(),
            timer: Arc::new(VirtualTimer::new(Arc::clone(clock))),
            mode: ClockMode::Rehearsal,
            specs: vec![SpecSource { origin: "kars-release.yaml".to_owned(), text: SPEC.to_owned() }],
            settings: token_settings().with_sharing(Sharing::Shared),
            adapters: adapters(),
        };
        let app = App::start(parts).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(kars::serve::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    async fn get(&self, person: &str, path: &str) -> Reply {
        request(self.addr, "GET", path, &[("Authorization", format!("Bearer {}", token(person)))], b"").await
    }

    async fn post(&self, person: &str, path: &str, body: &Value) -> Reply {
        let headers =
            [("Authorization", format!("Bearer {}", token(person))), ("Content-Type", "application/json".to_owned())];
        request(self.addr, "POST", path, &headers, body.to_string().as_bytes()).await
    }

    async fn status(&self, id: &str) -> Value {
        let reply = self.get("carol", &format!("/api/instances/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    async fn act(&self, person: &str, id: &str, node: &str, expected: Option<u64>) -> Reply {
        let body = json!({ "node": node, "expected_version": expected });
        self.post(person, &format!("/api/instances/{id}/act"), &body).await
    }
}

/// The instance's version in the database, read through a store of its own.
fn version_in_database(probe: &PgStore, id: &str) -> u64 {
    probe.version(&InstanceId::new(id).unwrap()).unwrap()
}

#[test]
fn two_replicas_on_one_schema_see_each_others_writes_and_refusals_write_nothing() {
    let Some(db) = TestDb::new("serve_replicas") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
        let probe = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
        let first = Replica::start(&db, &clock).await;
        let second = Replica::start(&db, &clock).await;
        let id = "kars-48";

        // The team lead starts the instance on the first replica; the second cannot start it again.
        let start = json!({ "workflow": "kars-release", "id": id });
        let started = first.post("frank", "/api/instances", &start).await;
        assert_eq!(started.status, 201, "{}", started.body);
        assert_eq!(started.json()["node"], "B");
        let again = second.post("frank", "/api/instances", &start).await;
        assert_eq!((again.status, again.problem()), (409, "exists".to_owned()), "{}", again.body);

        // A developer may not plan the sprint: 403, and the database did not move.
        let v0 = version_in_database(&probe, id);
        let refused = first.act("alice", id, "B", Some(v0)).await;
        assert_eq!((refused.status, refused.problem()), (403, "role".to_owned()), "{}", refused.body);
        assert_eq!(version_in_database(&probe, id), v0, "a refusal wrote to the database");

        // The second replica lists the instance the first one started before anyone asked it
        // for that instance, at the database's version.
        let listed = second.get("carol", "/api/instances").await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let listed = listed.json();
        assert_eq!(listed["instances"].as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(
            (listed["instances"][0]["id"].clone(), listed["instances"][0]["version"].as_u64()),
            (json!(id), Some(v0))
        );

        // The second replica opens the instance the first one started, at the same version.
        let seen = second.status(id).await;
        assert_eq!((seen["node"].clone(), seen["version"].as_u64()), (json!("B"), Some(v0)), "{seen}");

        // The PM plans the sprint through the first replica.
        let planned = first.act("erin", id, "B", Some(v0)).await;
        assert_eq!(planned.status, 200, "{}", planned.body);
        let v1 = version_in_database(&probe, id);
        assert!(v1 > v0);
        assert_eq!(planned.json()["version"].as_u64(), Some(v1));

        // The second replica sees it (its list too), and refuses the version the first one
        // made stale.
        let listed = second.get("carol", "/api/instances").await.json();
        assert_eq!(
            (listed["instances"][0]["node"].clone(), listed["instances"][0]["version"].as_u64()),
            (json!("C"), Some(v1)),
            "{listed}"
        );
        let seen = second.status(id).await;
        assert_eq!((seen["node"].clone(), seen["version"].as_u64()), (json!("C"), Some(v1)), "{seen}");
        let stale = second.act("frank", id, "C", Some(v0)).await;
        assert_eq!((stale.status, stale.problem()), (409, "version-conflict".to_owned()), "{}", stale.body);
        assert_eq!(stale.json()["current_version"].as_u64(), Some(v1), "{}", stale.body);
        assert_eq!(version_in_database(&probe, id), v1, "a stale write reached the database");

        // The team lead acts through the second replica with the current version.
        let confirmed = second.act("frank", id, "C", Some(v1)).await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.body);
        let v2 = version_in_database(&probe, id);
        assert!(v2 > v1);

        // Now the first replica is the stale one: it catches up, and refuses v1.
        let seen = first.status(id).await;
        assert_eq!((seen["node"].clone(), seen["version"].as_u64()), (json!("D"), Some(v2)), "{seen}");
        let stale = first.act("erin", id, "C", Some(v1)).await;
        assert_eq!((stale.status, stale.problem()), (409, "version-conflict".to_owned()), "{}", stale.body);
        assert_eq!(version_in_database(&probe, id), v2);

        // Either replica's history holds both people's records, once each, in order.
        let history = first.get("carol", &format!("/api/instances/{id}/history")).await.json();
        assert_eq!(history["version"].as_u64(), Some(v2), "{history}");
        let completes: Vec<(String, String)> = history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let event = &e["entry"]["input"]["input"]["event"];
                let node = event["complete"]["node"].as_str()?;
                Some((node.to_owned(), event["complete"]["actor"]["name"].as_str().unwrap_or_default().to_owned()))
            })
            .collect();
        assert_eq!(completes, [("B".to_owned(), "erin".to_owned()), ("C".to_owned(), "frank".to_owned())], "{history}");

        first.stop().await;
        second.stop().await;
    });
}
