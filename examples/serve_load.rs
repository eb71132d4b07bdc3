//! Load for `kars serve` (feature `serve`): a server on an ephemeral port with a file journal
//! in a temporary directory (or, with `--store URL` and the `postgres` feature, in the
//! PostgreSQL schema `kars_load`, dropped before and after), and N concurrent clients that
//! read an instance's status and act on it (with the version they read, so a client that lost
//! a race gets 409 and reads again) for S seconds. Prints requests per second, p50/p99 latency
//! of reads and writes, and checks the journals afterwards: every accepted act is one history
//! record, none lost, none twice.
//!
//! ```text
//! cargo run --release --example serve_load --features serve -- [CLIENTS] [SECONDS] [INSTANCES]
//! cargo run --release --example serve_load --features serve,postgres -- \
//!     [CLIENTS] [SECONDS] [INSTANCES] --store 'host=/var/run/postgresql dbname=test'
//! ```
//!
//! The workflow is `benches/serve/load.yaml`: a task and a decision looping back to it.
// A load tool measures wall-clock latency: it reads `Instant::now`, which the engine never does.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kars::serve::{App, AppParts, ServeStore, Settings, Sharing, SpecSource};
use kars::workflow::driver::{ClockMode, Entry, SystemClock, read_journal};
use kars::workflow::journal::FileStore;
use kars::workflow::service::SystemTimer;
use kars::workflow::{Event, Input, InstanceId, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPEC: &str = include_str!("../benches/serve/load.yaml");
const TOKEN: &str = "load-test-token-0123456789abcdef";

/// One request on a fresh connection: the status and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), Box<dyn Error + Send + Sync>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

#[derive(Default)]
struct Tally {
    reads: Vec<Duration>,
    writes: Vec<Duration>,
    accepted: BTreeMap<String, u64>,
    conflicts: u64,
    errors: u64,
}

async fn client(addr: SocketAddr, instance: String, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let path = format!("/api/instances/{instance}");
    while Instant::now() < until {
        let started = Instant::now();
        let Ok((200, body)) = request(addr, "GET", &path, "").await else {
            tally.errors += 1;
            continue;
        };
        tally.reads.push(started.elapsed());
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let node = status["node"].as_str().unwrap_or("T");
        let outcome = if node == "D" { serde_json::json!("again") } else { serde_json::Value::Null };
        let act = serde_json::json!({ "node": node, "outcome": outcome, "expected_version": status["version"] });
        let started = Instant::now();
        match request(addr, "POST", &format!("{path}/act"), &act.to_string()).await {
            Ok((200, _)) => *tally.accepted.entry(instance.clone()).or_default() += 1,
            Ok((409, _)) => tally.conflicts += 1,
            _ => tally.errors += 1,
        }
        tally.writes.push(started.elapsed());
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut numbers = Vec::new();
    let mut store_url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--store" => store_url = Some(args.next().ok_or("`--store` needs a URL")?),
            _ => numbers.push(arg.parse::<u64>()?),
        }
    }
    let mut numbers = numbers.into_iter();
    let load = Load {
        clients: numbers.next().unwrap_or(200),
        seconds: numbers.next().unwrap_or(30),
        instances: numbers.next().unwrap_or(20).max(1),
    };
    match store_url {
        None => {
            let dir = tempfile::tempdir()?;
            let store = Arc::new(FileStore::create_dir(dir.path())?);
            run(load, store, Sharing::Exclusive, "file journal").await
        }
        Some(url) => postgres(load, &url).await,
    }
}

/// The PostgreSQL run, in the schema `kars_load` (dropped before and after).
#[cfg(feature = "postgres")]
async fn postgres(load: Load, url: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    use kars::workflow::journal::{PgStore, PgStoreConfig};
    const SCHEMA: &str = "kars_load";
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let drop_schema = format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE");
    admin.batch_execute(&drop_schema).await?;
    let config = PgStoreConfig::default().with_schema(SCHEMA).with_pool_size(16);
    let url_owned = url.to_owned();
    let store = tokio::task::spawn_blocking(move || PgStore::connect(&url_owned, &config)).await??;
    let result = run(load, store, Sharing::Shared, "PostgreSQL (pool of 16)").await;
    admin.batch_execute(&drop_schema).await?;
    connection.abort();
    result
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_load: Load, _url: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    Err("`--store` needs the `postgres` feature: `--features serve,postgres`".into())
}

/// How much load.
#[derive(Clone, Copy)]
struct Load {
    clients: u64,
    seconds: u64,
    instances: u64,
}

async fn run<S: ServeStore>(
    load: Load,
    store: S,
    sharing: Sharing,
    label: &str,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let Load { clients, seconds, instances } = load;
    let settings =
        Settings::default().with_token_hash("w1".parse()?, &kars::serve::hash_token(TOKEN))?.with_sharing(sharing);
    let parts = AppParts {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        timer: Arc::new(SystemTimer),
        mode: ClockMode::System,
        specs: vec![SpecSource { origin: "load.yaml".to_owned(), text: SPEC.to_owned() }],
        settings,
        adapters: kars::serve::console_adapters(),
    };
    let app = App::start(parts).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kars::serve::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    for i in 0..instances {
        let body = serde_json::json!({ "workflow": "load", "id": format!("load-{i}") }).to_string();
        let (status, reply) = request(addr, "POST", "/api/instances", &body).await?;
        assert_eq!(status, 201, "{reply}");
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> =
        (0..clients).map(|c| tokio::spawn(client(addr, format!("load-{}", c % instances), until))).collect();
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await?;
        total.reads.extend(t.reads);
        total.writes.extend(t.writes);
        for (k, v) in t.accepted {
            *total.accepted.entry(k).or_default() += v;
        }
        total.conflicts += t.conflicts;
        total.errors += t.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    server.await??;

    // Every accepted act is exactly one accepted `complete` record, in a gapless history.
    let mut lost_or_duplicated = 0i64;
    for i in 0..instances {
        let id = InstanceId::new(format!("load-{i}"))?;
        let journal = read_journal(&store, &id)?;
        let mut seqs = Vec::new();
        let mut completes = 0u64;
        for entry in &journal.entries {
            if let Entry::Input(record) = entry {
                seqs.push(record.seq);
                if matches!(record.input, Input::Event(Event::Complete { .. })) && record.verdict == Verdict::Accepted {
                    completes += 1;
                }
            }
        }
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "history of `{id}` has a gap or a repeat");
        let accepted = total.accepted.get(id.as_str()).copied().unwrap_or(0);
        lost_or_duplicated += (completes as i64 - accepted as i64).abs();
    }
    total.reads.sort();
    total.writes.sort();
    let requests = total.reads.len() + total.writes.len();
    let accepted: u64 = total.accepted.values().sum();
    println!("{clients} clients, {instances} instances, {seconds} s, {label}");
    println!("requests: {requests} ({:.0}/s); errors: {}", requests as f64 / elapsed, total.errors);
    println!("reads:  p50 {:.1} ms, p99 {:.1} ms", percentile(&total.reads, 0.5), percentile(&total.reads, 0.99));
    println!(
        "writes: p50 {:.1} ms, p99 {:.1} ms; {accepted} accepted, {} version conflicts (409)",
        percentile(&total.writes, 0.5),
        percentile(&total.writes, 0.99),
        total.conflicts
    );
    println!("history records lost or duplicated: {lost_or_duplicated}");
    if lost_or_duplicated != 0 || total.errors != 0 {
        return Err("the load run lost, duplicated or failed requests".into());
    }
    Ok(())
}
