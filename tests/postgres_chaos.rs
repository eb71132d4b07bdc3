//! Chaos against real `kars worker` processes sharing a PostgreSQL store: replicas killed with
//! SIGKILL in the middle of effects, again and again, lose no effect (each key reaches the
//! webhook at least once, a duplicate only under its own key) and leave no instance waiting
//! longer than the lease; a replica stopped with SIGTERM releases its leases at once.
#![cfg(all(feature = "postgres", feature = "webhook", unix))]
// It measures how long instances wait after a kill: on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kars::workflow::InstanceId;
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::driver::{Adapters, ClockMode, Driver, DriverConfig, Parts, Program, SpecText, Start, SystemClock};
use kars::workflow::journal::PgStore;

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

/// Four notifications at the start: an instance is in the middle of its effects for as long as
/// the webhook takes to answer four times.
const SPEC: &str = r##"version: 1
name: chaos
timezone: UTC
channels:
  ops: { name: "#ops" }
nodes:
  Start: { label: Start, kind: start }
  N1: { label: N1, kind: action, action: { notify: { to: [{ channel: ops }], message: "one {release}" } } }
  N2: { label: N2, kind: action, action: { notify: { to: [{ channel: ops }], message: "two {release}" } } }
  N3: { label: N3, kind: action, action: { notify: { to: [{ channel: ops }], message: "three {release}" } } }
  N4: { label: N4, kind: action, action: { notify: { to: [{ channel: ops }], message: "four {release}" } } }
  Done: { label: Done, kind: end, outcome: done }
edges:
  - { from: Start, to: N1 }
  - { from: N1, to: N2 }
  - { from: N2, to: N3 }
  - { from: N3, to: N4 }
  - { from: N4, to: Done }
"##;

/// A webhook receiver that records the `Idempotency-Key` of every request it answers,
/// taking `delay` to answer.
struct Receiver {
    url: String,
    keys: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(Vec::new()));
        let k = Arc::clone(&keys);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let keys = Arc::clone(&k);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let (mut key, mut length) = (None, 0usize);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            match name.to_ascii_lowercase().as_str() {
                                "idempotency-key" => key = Some(value.trim().to_owned()),
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    std::thread::sleep(delay);
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    // Recorded only once the answer is out: a replica killed before reading it
                    // may or may not count it, the at-least-once contract covers both.
                    if reader.get_mut().write_all(answer.as_bytes()).is_ok() {
                        keys.lock().unwrap().push(key.unwrap_or_default());
                    }
                });
            }
        });
        Self { url, keys }
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

/// Starts `count` real-clock instances as `kars instance start` would (the spec's text in
/// the header), leaving their four notifications pending in the outbox: nothing performs them.
fn start_instances(db: &TestDb, count: usize) -> Vec<String> {
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let program = Program::new(&kars::spec::load(SPEC, "chaos.yaml").unwrap()).unwrap();
    let ids: Vec<String> = (0..count).map(|i| format!("chaos-{i:03}")).collect();
    for id in &ids {
        let parts = Parts {
            store: store.clone(),
            clock: SystemClock,
            adapters: Adapters::new(RecordingNotifier::new()),
            config: DriverConfig::default(),
        };
        let spec = SpecText { origin: "chaos.yaml".to_owned(), text: SPEC.to_owned() };
        let start = Start { spec: Some(spec), clock: ClockMode::System, roster: None };
        Driver::create_with(parts, &program, &InstanceId::new(id.as_str()).unwrap(), start).unwrap();
    }
    let pending = format!("SELECT count(*) FROM \"{}\".outbox WHERE done_version IS NULL", db.schema);
    assert_eq!(db.column_i64(&pending), [4 * count as i64], "four notifications pending per instance");
    ids
}

/// A `kars worker` process claiming `batch` instances at a time for `lease` seconds.
/// Its standard error after the announcement is collected by the returned thread.
fn worker(db: &TestDb, receiver: &Receiver, lease: &str, batch: &str) -> (Child, JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(["worker", "--store", db.url.as_str(), "--schema", db.schema.as_str()])
        .args(["--lease", lease, "--batch", batch, "--poll", "0.2", "--webhook", &receiver.url])
        // The test's writer emits the first effects and performs none: no grace for it.
        .args(["--effect-grace", "0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the replica's announcement: its signal handling is in place by then.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("kars worker: replica `"), "{line}");
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    (child, rest)
}

/// `(instance, epoch)` of every lease `pid`'s replica holds.
fn leases_of(db: &TestDb, pid: u32) -> Vec<(String, i64)> {
    let sql = format!(
        "SELECT instance, epoch FROM \"{}\".instances WHERE owner LIKE '{pid}-%' AND lease_expires_at > now()",
        db.schema
    );
    let rows = db.runtime.block_on(db.admin.query(&sql, &[])).unwrap();
    rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect()
}

/// Whether `instance` was claimed again after `epoch`, or has nothing left to do.
fn picked_up_or_done(db: &TestDb, instance: &str, epoch: i64) -> bool {
    let sql = format!(
        "SELECT i.epoch > $2 OR NOT EXISTS (SELECT 1 FROM \"{s}\".outbox o \
         WHERE o.instance = i.instance AND o.done_version IS NULL) \
         FROM \"{s}\".instances i WHERE i.instance = $1",
        s = db.schema
    );
    db.runtime.block_on(db.admin.query_one(&sql, &[&instance, &epoch])).unwrap().get(0)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([name, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// The keys of every effect in the outbox, and how many are not acknowledged.
fn outbox(db: &TestDb) -> (BTreeSet<String>, i64) {
    let sql = format!("SELECT key FROM \"{}\".outbox", db.schema);
    let rows = db.runtime.block_on(db.admin.query(&sql, &[])).unwrap();
    let keys = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let pending = format!("SELECT count(*) FROM \"{}\".outbox WHERE done_version IS NULL", db.schema);
    (keys, db.column_i64(&pending)[0])
}

/// How long after a kill every instance the killed replica held is claimed again, at most:
/// its lease (a heartbeat just before the kill renewed it in full), then a survivor's next
/// claim: a `poll` away when the survivor is idle, the `batch` it is finishing away when it is
/// busy (four notifications each, the webhook taking `answer` for each; both are counted),
/// and 1.8 s for the commits and the scheduling of three debug processes on a shared two-core
/// machine. For the 2 s lease, 0.2 s poll, batch 2 and 60 ms answers here: 4.48 s.
fn takeover_bound(lease: Duration, poll: Duration, batch: u32, answer: Duration) -> Duration {
    lease + poll + answer * 4 * batch + Duration::from_millis(1800)
}

#[test]
fn replicas_killed_mid_effect_again_and_again_lose_no_effect_and_hold_nothing_past_the_lease() {
    let Some(db) = TestDb::new("chaos_kill") else { return };
    const INSTANCES: usize = 40;
    const KILLS: usize = 6;
    let lease = Duration::from_secs(2);
    let answer = Duration::from_millis(60);
    let receiver = Receiver::start(answer);
    let ids = start_instances(&db, INSTANCES);

    let mut replicas: Vec<Child> = (0..3).map(|_| worker(&db, &receiver, "2", "2").0).collect();
    let mut waits = Vec::new();
    let mut killed_holding = 0;
    for kill in 0..KILLS {
        // Kill the replica that holds the most leases, once it holds some (mid-effect).
        let began = Instant::now();
        let victim = loop {
            let held: Vec<usize> = replicas.iter().map(|c| leases_of(&db, c.id()).len()).collect();
            let (i, most) = held.iter().enumerate().max_by_key(|(_, n)| **n).map(|(i, n)| (i, *n)).unwrap();
            if most > 0 || began.elapsed() > Duration::from_secs(5) {
                break i;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut child = replicas.swap_remove(victim);
        let held = leases_of(&db, child.id());
        signal(&child, "-KILL");
        let killed_at = Instant::now();
        child.wait().unwrap();
        killed_holding += usize::from(!held.is_empty());
        // Every instance it held is claimed again (or finished) by the two survivors within
        // the lease and a survivor's next claim (see `takeover_bound`). The replacement starts
        // afterwards: starting a process (seconds on a loaded machine) is not a takeover's
        // wait, and survivors take over without it.
        let mut pending: Vec<(String, i64)> = held;
        while !pending.is_empty() && killed_at.elapsed() < Duration::from_secs(30) {
            pending.retain(|(id, epoch)| !picked_up_or_done(&db, id, *epoch));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(pending.is_empty(), "kill {kill}: never picked up: {pending:?}");
        waits.push(killed_at.elapsed());
        replicas.push(worker(&db, &receiver, "2", "2").0);
    }
    // The survivors finish everything.
    let began = Instant::now();
    while outbox(&db).1 > 0 || outbox(&db).0.len() < 4 * INSTANCES {
        assert!(began.elapsed() < Duration::from_secs(60), "unfinished: {:?}", outbox(&db));
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut child in replicas {
        signal(&child, "-TERM");
        assert!(child.wait().unwrap().success());
    }

    let (keys, pending) = outbox(&db);
    assert_eq!(pending, 0);
    assert_eq!(keys.len(), 4 * INSTANCES, "four notifications per instance: {keys:?}");
    for id in &ids {
        assert_eq!(keys.iter().filter(|k| k.starts_with(&format!("{id}/"))).count(), 4, "{id}");
    }
    let mut performed: BTreeMap<String, usize> = BTreeMap::new();
    for key in receiver.keys() {
        *performed.entry(key).or_default() += 1;
    }
    // Each effect notifies one channel: its delivery's key is the effect's and the recipient.
    let expected: BTreeSet<String> = keys.iter().map(|k| format!("{k}/channel:ops")).collect();
    let performed_keys: BTreeSet<String> = performed.keys().cloned().collect();
    let lost: Vec<_> = expected.difference(&performed_keys).collect();
    let unknown: Vec<_> = performed_keys.difference(&expected).collect();
    assert!(lost.is_empty() && unknown.is_empty(), "lost: {lost:?}; performed but never emitted: {unknown:?}");
    let duplicates: usize = performed.values().map(|n| n - 1).sum();
    let worst = waits.iter().max().unwrap();
    let effects = keys.len();
    eprintln!(
        "{INSTANCES} instances, {effects} effects, {KILLS} kills ({killed_holding} holding leases), \
         {duplicates} duplicate deliveries (same keys), longest wait after a kill {worst:?} (lease {lease:?})"
    );
    assert!(killed_holding >= KILLS / 2, "most kills hit a replica mid-effect: {killed_holding}");
    let bound = takeover_bound(lease, Duration::from_millis(200), 2, answer);
    assert!(*worst <= bound, "waited {waits:?}, more than {bound:?}");
}

#[test]
fn sigterm_finishes_the_instance_in_hand_and_releases_every_lease() {
    let Some(db) = TestDb::new("chaos_term") else { return };
    let receiver = Receiver::start(Duration::from_millis(100));
    start_instances(&db, 12);

    // A lease of a minute: without a release, nobody could take over before then.
    let (mut child, stderr) = worker(&db, &receiver, "60", "16");
    let began = Instant::now();
    while leases_of(&db, child.id()).len() < 2 {
        assert!(began.elapsed() < Duration::from_secs(20), "the worker claimed nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "-TERM");
    let stopping = Instant::now();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stopping.elapsed() < Duration::from_secs(10), "stopped in {:?}", stopping.elapsed());
    assert!(stderr.contains("stopped, its leases released"), "{stderr}");
    let held = format!("SELECT count(*) FROM \"{}\".instances WHERE owner IS NOT NULL", db.schema);
    assert_eq!(db.column_i64(&held), [0], "no lease left behind");
    let live = format!("SELECT count(*) FROM \"{}\".instances WHERE lease_expires_at > now()", db.schema);
    assert_eq!(db.column_i64(&live), [0], "no lease left to expire");

    // Another replica takes the rest over at once and finishes it.
    let out = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(["worker", "--once", "--store", db.url.as_str(), "--schema", db.schema.as_str()])
        .args(["--webhook", &receiver.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("drove `chaos-"), "something was left to drive");
}
