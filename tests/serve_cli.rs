//! `kars serve` as a command (feature `serve`): the token helpers, and a real server on the
//! system clock that starts an instance over HTTP and stops gracefully on SIGTERM with the
//! instance in its journal.
#![cfg(all(feature = "serve", unix))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn kars() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kars"))
}

fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

#[test]
fn hash_token_and_new_token_agree() {
    let mut child = kars().args(["serve", "hash-token"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"password").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
    );

    let out = kars().args(["serve", "new-token"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
    assert_eq!(kars::serve::hash_token(&field("token:")), field("sha256:"));
}

#[test]
fn a_server_starts_an_instance_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let config = dir.path().join("serve.yaml");
    let token = "frank-token-0123456789abcdef";
    std::fs::write(
        &config,
        format!("version: 1\ntokens:\n  - {{ person: frank, sha256: {} }}\n", kars::serve::hash_token(token)),
    )
    .unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");
    let mut child = kars()
        .args(["serve", spec, "--listen", "127.0.0.1:0", "--journal"])
        .arg(&journal)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "the server exited before listening");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert_eq!(http(&addr, "GET", "/healthz", "", "").0, 200);
    assert_eq!(http(&addr, "GET", "/api/instances", "wrong", "").0, 401);
    let (status, body) = http(&addr, "POST", "/api/instances", token, r#"{"workflow":"kars-release","id":"kars"}"#);
    assert_eq!(status, 201, "{body}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "kars serve exited with {exit} on SIGTERM");
    let store = kars::workflow::journal::FileStore::open_read_only(&journal).unwrap();
    use kars::workflow::journal::Store;
    assert_eq!(store.list().unwrap().iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>(), ["kars"]);
}

#[test]
fn the_store_is_a_journal_directory_or_a_database_not_both_nor_neither() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let both = kars()
        .args(["serve", spec, "--store", "postgres://kars@127.0.0.1:1/kars", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"), "{both:?}");
    let neither = kars().args(["serve", spec]).output().unwrap();
    assert_eq!(neither.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("`--journal DIR` or `--store URL`"), "{neither:?}");
    let schema_alone = kars().args(["serve", spec, "--schema", "kars", "--journal"]).arg(&journal).output().unwrap();
    assert_eq!(schema_alone.status.code(), Some(2), "{schema_alone:?}");
    assert!(!journal.exists(), "a refused command created the journal");
    // Without the `postgres` feature, `--store` says how to get it.
    #[cfg(not(feature = "postgres"))]
    {
        let out = kars().args(["serve", spec, "--store", "postgres://kars@127.0.0.1:1/kars"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("built without PostgreSQL"), "{out:?}");
    }
}

#[cfg(feature = "forge")]
#[test]
fn a_forge_for_the_service_is_checked_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");
    let serve = |extra: &[&str], token: Option<&str>| {
        let mut cmd = kars();
        cmd.args(["serve", spec, "--listen", "127.0.0.1:0", "--journal"])
            .arg(dir.path().join("journal"))
            .args(extra)
            .env_remove("KARS_FORGE_TOKEN");
        if let Some(token) = token {
            cmd.env("KARS_FORGE_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    // No token: a usage error naming where the token comes from, before anything listens.
    let out = serve(&["--forge", "github:keydatalab/kars"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`KARS_FORGE_TOKEN`") && !err.contains("listening"), "{err}");
    // A plain-http API elsewhere would send the token in clear text.
    let forge = ["--forge", "github:keydatalab/kars", "--forge-api", "http://forge.example.com/api/v3"];
    let out = serve(&forge, Some("ghp_0123456789abcdef0123456789abcdef0123"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http://") && !err.contains("ghp_0123"), "{err}");
    // `--forge` and `--git` exclude each other.
    let out = serve(&["--forge", "github:keydatalab/kars", "--git", "."], Some("t"));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
