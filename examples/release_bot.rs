//! A release bot: the engine embedded in a small service, posting to a webhook (a local HTTP
//! listener this example starts) and merging in a git repository (a temporary one it creates),
//! with its journal on disk. It runs one KARS week on a virtual clock and tells the story.
//!
//! Run with `cargo run --example release_bot --features webhook` (needs `git` 2.38 or later).

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use kars::workflow::InstanceId;
use kars::workflow::adapter::{GitVcs, WebhookNotifier};
use kars::workflow::driver::{
    Adapters, Clock, Driver, DriverConfig, LogKind, OperationsFn, Parts, Program, Roster, VirtualClock,
};
use kars::workflow::journal::FileStore;
use kars::workflow::{ActionOutcome, Event};

#[path = "shared/kars_week.rs"]
mod kars_week;

/// What the webhook listener received: (idempotency key, JSON body), one per key.
type Inbox = Arc<Mutex<Vec<(String, String)>>>;

/// Starts an HTTP listener on 127.0.0.1 that answers every POST with 200 and keeps each
/// idempotency key's first body; returns its URL.
fn start_webhook(inbox: Inbox) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hooks/release-bot", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut key, mut length, mut line) = (String::new(), 0usize, String::new());
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((name, value)) = line.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "idempotency-key" => key = value.trim().to_owned(),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
            if !inbox.iter().any(|(k, _)| *k == key) {
                inbox.push((key, String::from_utf8_lossy(&body).into_owned()));
            }
            let _ =
                reader.into_inner().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    Ok(url)
}

fn git(repo: &Path, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.invalid")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.invalid")
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A repository with `kars-prod`, `kars-dev` one commit ahead, and `feature/login` ahead of that.
fn make_repo(repo: &Path) -> Result<(), Box<dyn Error>> {
    git(repo, &["init", "-q", "-b", "main"])?;
    let commit = |file: &str| -> Result<(), Box<dyn Error>> {
        std::fs::write(repo.join(file), file)?;
        git(repo, &["add", file])?;
        git(repo, &["commit", "-q", "-m", &format!("add {file}")])?;
        Ok(())
    };
    commit("README")?;
    git(repo, &["branch", "kars-prod"])?;
    git(repo, &["checkout", "-q", "-b", "kars-dev"])?;
    commit("dev.txt")?;
    git(repo, &["checkout", "-q", "-b", "feature/login"])?;
    commit("login.txt")?;
    git(repo, &["checkout", "-q", "main"])?;
    Ok(())
}

/// Prints what the bot did since the last call.
fn print_log<S: kars::workflow::journal::Store>(
    driver: &mut Driver<S, Arc<VirtualClock>>,
    local: &dyn Fn(DateTime<Utc>) -> String,
) {
    for entry in driver.take_log() {
        match &entry.kind {
            LogKind::Performed(status) => {
                println!("{}    the bot performed {} ({status:?})", local(entry.at), entry.key)
            }
            LogKind::Failed { error } => println!("{}    {} failed: {error}", local(entry.at), entry.key),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let inbox = Inbox::default();
    let url = start_webhook(Arc::clone(&inbox))?;
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo)?;
    make_repo(&repo)?;

    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml"))?;
    let spec = kars::spec::load(&yaml, "kars-release.yaml")?;
    let (program, team) = (Program::new(&spec)?, Roster::from_spec(spec.spec()));
    let zone = program.workflow().zone();
    let local = move |at: DateTime<Utc>| at.with_timezone(&zone).format("%a %H:%M").to_string();
    let clock = Arc::new(VirtualClock::new("2026-11-23T13:00:00Z".parse()?));
    // Deploys and smoke checks: this bot's infrastructure always succeeds.
    let ops = OperationsFn(|_: &_| Ok(Some(ActionOutcome::Succeeded)));
    let adapters = Adapters::new(WebhookNotifier::new(url))
        .with_vcs(GitVcs::new(&repo).with_identity("kars release bot", "bot@example.invalid"))
        .with_operations(ops);
    let store = FileStore::create_dir(work.path().join("journal"))?;
    let parts = Parts { store, clock: Arc::clone(&clock), adapters, config: DriverConfig::default() };
    let mut driver = Driver::create(parts, &program, &InstanceId::new("kars-release")?, None)?;

    for (at, node, who, outcome) in kars_week::CLEAN_WEEK {
        driver.run_until(at.parse()?)?;
        print_log(&mut driver, &local); // what the timers did before this person acted
        let event = Event::Complete { node: node.parse()?, actor: team.actor(who)?, outcome: outcome.map(Into::into) };
        driver.handle_event(event)?;
        driver.run_effects()?; // what the act caused: merges, deploys, notifications
        println!("{}  {who} completes {node}", local(clock.now()));
        print_log(&mut driver, &local);
    }
    driver.run_until("2026-11-30T17:00:00Z".parse()?)?;
    print_log(&mut driver, &local);
    for cycle in driver.instance().cycle_outcomes() {
        println!("{} ended: {}", cycle.release, cycle.outcome);
    }
    println!("\nthe webhook received:");
    for (key, body) in inbox.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        println!("  {key}: {body}");
    }
    println!("\nkars-prod now:");
    for subject in git(&repo, &["log", "--format=%s", "kars-prod"])?.lines() {
        println!("  {subject}");
    }
    Ok(())
}
