//! Signed webhooks into `kars serve` (feature `serve`): a CI system reports H's deploy with an
//! HMAC-SHA256 over `TIMESTAMP.BODY`; a bad signature, a stale timestamp, a replay and a
//! sender whose person may not report are refused, and none of them writes anything.
#![cfg(feature = "serve")]

mod serve_support;

use kars::serve::Sender;
use kars::serve::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use kars::workflow::driver::Clock as _;
use serde_json::json;
use serve_support::{Reply, TestServer, request, token_settings};

const CI_SECRET: &[u8] = b"ci-secret-0123456789";
const QA_BOT_SECRET: &[u8] = b"qa-bot-secret-0123456789";

async fn deliver(server: &TestServer, sender: &str, timestamp: i64, body: &[u8], signature: &str) -> Reply {
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature.to_owned()),
    ];
    request(server.addr, "POST", &format!("/hooks/{sender}"), &headers, body).await
}

fn refused(server: &TestServer, reply: &Reply, status: u16, kind: &str, before: u64) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.problem(), kind, "{}", reply.body);
    assert_eq!(server.journal_version("kars"), before, "a refused webhook wrote to the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_report_results_and_forgeries_write_nothing() {
    let mut settings = token_settings();
    // The CI system reports as dave (DevOps); a QA bot reports as carol, who may not report H.
    settings.senders.insert("ci".to_owned(), Sender::new("ci", "dave".parse().unwrap(), CI_SECRET).unwrap());
    settings
        .senders
        .insert("qa-bot".to_owned(), Sender::new("qa-bot", "carol".parse().unwrap(), QA_BOT_SECRET).unwrap());
    let server = TestServer::start(settings).await;
    server.start_instance("kars").await;
    server.accepted("erin", "kars", "B", None).await;
    server.accepted("frank", "kars", "C", None).await;
    server.advance_to("2026-11-24 09:00").await;
    server.accepted("alice", "kars", "D", None).await;
    server.accepted("alice", "kars", "E", None).await;
    server.accepted("bob", "kars", "F", Some("approved")).await;
    server.until_at("kars", "H").await;

    // Senders sign with their real clock; the server judges skew by its system clock, not by
    // the rehearsal's virtual one (2026-11-24 09:00 here).
    let now = kars::workflow::driver::SystemClock.now().timestamp();
    let body = json!({ "instance": "kars", "node": "H", "outcome": "succeeded" }).to_string();
    let body = body.as_bytes();
    let v = server.journal_version("kars");

    // Signed with another secret; signed over another body; no signature at all.
    let reply = deliver(&server, "ci", now, body, &sign(b"not-the-ci-secret-000", now, body)).await;
    refused(&server, &reply, 401, "bad-signature", v);
    let reply = deliver(&server, "ci", now, body, &sign(CI_SECRET, now, b"{}")).await;
    refused(&server, &reply, 401, "bad-signature", v);
    let reply = deliver(&server, "ci", now, body, "").await;
    refused(&server, &reply, 401, "bad-signature", v);
    // Correctly signed, but ten minutes old (or from the future).
    let reply = deliver(&server, "ci", now - 600, body, &sign(CI_SECRET, now - 600, body)).await;
    refused(&server, &reply, 401, "stale-timestamp", v);
    let reply = deliver(&server, "ci", now + 600, body, &sign(CI_SECRET, now + 600, body)).await;
    refused(&server, &reply, 401, "stale-timestamp", v);
    // An unknown sender.
    let reply = deliver(&server, "nobody", now, body, &sign(CI_SECRET, now, body)).await;
    refused(&server, &reply, 401, "unauthenticated", v);
    // A genuine sender whose person may not report a deploy (403, the engine's reason).
    let reply = deliver(&server, "qa-bot", now, body, &sign(QA_BOT_SECRET, now, body)).await;
    refused(&server, &reply, 403, "role", v);
    assert_eq!(reply.json()["reason"]["unauthorized"]["needed"], json!(["devops"]), "{}", reply.body);

    // The real delivery moves H on; the same delivery again is a replay.
    let signature = sign(CI_SECRET, now, body);
    let reply = deliver(&server, "ci", now, body, &signature).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["node"], "I");
    let v = server.journal_version("kars");
    let reply = deliver(&server, "ci", now, body, &signature).await;
    refused(&server, &reply, 401, "replayed", v);
    server.stop().await;
}
