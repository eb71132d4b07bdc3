//! `kars serve`'s JSON API on an ephemeral port (feature `serve`): every role of the KARS week
//! acting through it, each refusal with its status code and problem kind, both ways of saying
//! who you are, and nothing written for a refusal. The clock is virtual and moves only when
//! the test says so.
#![cfg(feature = "serve")]

mod serve_support;

use serde_json::json;
use serve_support::{TestServer, Who, token_settings};

/// Asserts that `reply` is the problem `kind` with `status`, and that the journal on disk did
/// not change.
async fn refused(server: &TestServer, id: &str, reply: serve_support::Reply, status: u16, kind: &str, before: u64) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.problem(), kind, "{}", reply.body);
    assert!(!reply.json()["detail"].as_str().unwrap().is_empty());
    assert_eq!(server.journal_version(id), before, "a refusal wrote to the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_acts_through_the_api_for_a_week_and_each_refusal_has_its_code() {
    let server = TestServer::start(token_settings()).await;
    let id = "kars-48";

    // Nobody, an unknown token, proxy headers from a peer that is not a configured proxy.
    assert_eq!(server.get(Who::Nobody, "/api/instances").await.problem(), "unauthenticated");
    assert_eq!(server.get(Who::RawToken("guess"), "/api/instances").await.status, 401);
    assert_eq!(server.get(Who::Proxy("carol"), "/api/instances").await.status, 401);
    // Only a team lead starts an instance.
    let reply =
        server.post(Who::Token("alice"), "/api/instances", &json!({ "workflow": "kars-release", "id": id })).await;
    assert_eq!((reply.status, reply.problem()), (403, "role".to_owned()), "{}", reply.body);
    let started = server.start_instance(id).await;
    assert_eq!(started["node"], "B");
    let again =
        server.post(Who::Token("frank"), "/api/instances", &json!({ "workflow": "kars-release", "id": id })).await;
    assert_eq!(again.status, 409);

    // Monday: a developer may not plan the sprint (403 role), mallory is not on the roster.
    let v = server.journal_version(id);
    refused(&server, id, server.act("alice", id, "B", None).await, 403, "role", v).await;
    refused(&server, id, server.act("mallory", id, "B", None).await, 403, "not-on-roster", v).await;
    let who = server.status(id).await["who_can_act"].clone();
    let allowed: Vec<&str> = who
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["allowed"] == true)
        .map(|p| p["person"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, ["erin", "frank"]);
    // A stale expected version: 409 with the current version, by If-Match and by body.
    let stale = server
        .post_with(
            Who::Token("erin"),
            &format!("/api/instances/{id}/act"),
            &json!({ "node": "B" }),
            &[("If-Match", "\"0\"".to_owned())],
        )
        .await;
    assert_eq!(stale.json()["current_version"], v);
    refused(&server, id, stale, 409, "version-conflict", v).await;
    let stale = server
        .post(Who::Token("erin"), &format!("/api/instances/{id}/act"), &json!({ "node": "B", "expected_version": 0 }))
        .await;
    refused(&server, id, stale, 409, "version-conflict", v).await;
    let fresh = server
        .post_with(
            Who::Token("erin"),
            &format!("/api/instances/{id}/act"),
            &json!({ "node": "B" }),
            &[("If-Match", format!("\"{v}\""))],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert!(server.journal_version(id) > v);
    server.accepted("frank", id, "C", None).await;

    // D's gate opens Tuesday 09:00: 422 before.
    let v = server.journal_version(id);
    refused(&server, id, server.act("alice", id, "D", None).await, 422, "gate-closed", v).await;
    server.advance_to("2026-11-24 09:00").await;
    server.accepted("alice", id, "D", None).await;
    server.accepted("alice", id, "E", None).await;
    // Alice opened the PR: she may not review it (403); a review outcome that does not exist (422).
    let v = server.journal_version(id);
    refused(&server, id, server.act("alice", id, "F", Some("approved")).await, 403, "separation-of-duties", v).await;
    refused(&server, id, server.act("bob", id, "F", Some("rejected")).await, 422, "unknown-outcome", v).await;
    // A node the instance is not at: 409 with the current version.
    let reply = server.act("bob", id, "Q", None).await;
    assert_eq!(reply.json()["current_version"], v);
    refused(&server, id, reply, 409, "not-awaiting", v).await;
    server.accepted("bob", id, "F", Some("approved")).await;
    // G merges by itself; H's deploy is reported by DevOps, not by QA.
    server.until_at(id, "H").await;
    let v = server.journal_version(id);
    let report = |person: &'static str, outcome: &'static str| {
        let server = &server;
        async move {
            server
                .post(
                    Who::Token(person),
                    &format!("/api/instances/{id}/report"),
                    &json!({ "node": "H", "outcome": outcome }),
                )
                .await
        }
    };
    refused(&server, id, report("carol", "succeeded").await, 403, "role", v).await;
    refused(&server, id, report("dave", "maybe").await, 422, "unknown-outcome", v).await;
    assert_eq!(report("dave", "succeeded").await.status, 200);

    // Thursday: the PM reviews; J announces the freeze at 17:00; merges of features stop.
    server.advance_to("2026-11-26 09:00").await;
    server.accepted("erin", id, "I", None).await;
    let may = |source: &'static str| {
        let server = &server;
        async move {
            server
                .get(Who::Token("bob"), &format!("/api/instances/{id}/may?source={source}&target=kars-dev"))
                .await
                .json()
        }
    };
    assert_eq!(may("feature%2Flogin").await["allowed"], true);
    server.advance_to("2026-11-26 17:00").await;
    server.until_at(id, "K").await;
    let frozen = may("feature%2Flogin").await;
    assert_eq!(frozen["allowed"], false, "{frozen}");
    assert_eq!(frozen["window"], "code_freeze");
    assert_eq!(may("fix%2Fcrash").await["allowed"], true);
    server.accepted("erin", id, "K", None).await;

    // Friday: QA tests, DevOps monitors, QA decides and signs off before 15:00.
    server.advance_to("2026-11-27 09:00").await;
    server.accepted("carol", id, "L", None).await;
    server.accepted("dave", id, "M", None).await;
    server.accepted("carol", id, "N", Some("Yes")).await;
    server.accepted("carol", id, "Q", None).await;
    // The PM approves late: on Saturday the weekend window pauses tasks (422).
    server.advance_to("2026-11-28 10:00").await;
    let v = server.journal_version(id);
    refused(&server, id, server.act("erin", id, "R", None).await, 422, "window-forbids", v).await;
    // Monday: approval, pre-flight, review by the team lead (not DevOps, who did U).
    server.advance_to("2026-11-30 08:00").await;
    server.accepted("erin", id, "R", None).await;
    server.advance_to("2026-11-30 09:45").await;
    server.until_at(id, "U").await;
    server.accepted("dave", id, "U", None).await;
    server.until_at(id, "W").await;
    server.accepted("frank", id, "W", Some("approved")).await;
    server.advance_to("2026-11-30 10:00").await;
    server.until_at(id, "Y").await;
    // The deploy is reported by DevOps, monitored, smoke-tested by QA, verified by the PM.
    let deployed = server
        .post(
            Who::Token("dave"),
            &format!("/api/instances/{id}/report"),
            &json!({ "node": "Y", "outcome": "succeeded" }),
        )
        .await;
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    server.accepted("dave", id, "Z", None).await;
    server.until_at(id, "AD").await;
    server.accepted("carol", id, "AD", Some("succeeded")).await;
    server.accepted("erin", id, "AE", None).await;
    server.advance_to("2026-11-30 11:00").await;
    let status = server.until_at(id, "B").await;
    assert_eq!(status["finished"][0]["outcome"], "released", "{status}");

    // The history, paged: every entry once, in order, and as many as the journal holds.
    let total = server.journal_version(id);
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page =
            server.get(Who::Token("carol"), &format!("/api/instances/{id}/history?after={after}&limit=7")).await.json();
        for entry in page["entries"].as_array().unwrap() {
            seen.push(entry["version"].as_u64().unwrap());
        }
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    // A page past the end is empty, however far past.
    for after in [total, u64::MAX] {
        let page = server.get(Who::Token("carol"), &format!("/api/instances/{id}/history?after={after}")).await.json();
        assert_eq!(
            (page["entries"].as_array().map(Vec::len), page["next_after"].clone()),
            (Some(0), json!(null)),
            "{page}"
        );
        assert_eq!(page["version"].as_u64(), Some(total), "{page}");
    }
    // The drawing has the overlay; the list shows the instance.
    let mermaid = server.get(Who::Token("carol"), &format!("/api/instances/{id}/mermaid")).await;
    assert!(mermaid.body.starts_with("---") || mermaid.body.contains("flowchart"), "{}", mermaid.body);
    assert!(mermaid.body.contains("classDef"), "{}", mermaid.body);
    let list = server.get(Who::Token("bob"), "/api/instances").await.json();
    assert_eq!(list["instances"][0]["id"], id);
    // Metrics count the refusals by kind; health and readiness answer without credentials.
    let metrics = server.get(Who::Nobody, "/metrics").await.body;
    assert!(metrics.contains("kars_refusals_total{kind=\"gate-closed\"} 1"), "{metrics}");
    assert!(metrics.contains("kars_instances{node=\"B\"} 1"), "{metrics}");
    assert_eq!(server.get(Who::Nobody, "/healthz").await.status, 200);
    assert_eq!(server.get(Who::Nobody, "/readyz").await.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_headers_are_identity_only_from_configured_peers() {
    let mut settings = token_settings();
    settings.proxy_peers = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(settings).await;
    server.start_instance("kars").await;
    // Frank's login, vouched for by the proxy at 127.0.0.1; e-mail when the user is absent.
    let reply = server.post(Who::Proxy("frank"), "/api/instances/kars/act", &json!({ "node": "B" })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = server.journal_version("kars");
    let reply = server.post(Who::Proxy("carol"), "/api/instances/kars/act", &json!({ "node": "C" })).await;
    refused(&server, "kars", reply, 403, "role", v).await;
    let reply = server.post(Who::Proxy("nobody-we-know"), "/api/instances/kars/act", &json!({ "node": "C" })).await;
    refused(&server, "kars", reply, 403, "not-on-roster", v).await;
    // Identity in the body is not identity.
    let reply = server.post(Who::Nobody, "/api/instances/kars/act", &json!({ "node": "C", "actor": "frank" })).await;
    refused(&server, "kars", reply, 401, "unauthenticated", v).await;
    server.stop().await;

    // A server whose proxy is elsewhere ignores the same headers from 127.0.0.1.
    let mut settings = token_settings();
    settings.proxy_peers = vec!["10.9.9.9".parse().unwrap()];
    let server = TestServer::start(settings).await;
    server.start_instance("kars").await;
    let v = server.journal_version("kars");
    let reply = server.post(Who::Proxy("frank"), "/api/instances/kars/act", &json!({ "node": "B" })).await;
    refused(&server, "kars", reply, 401, "unauthenticated", v).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_and_a_restart_resumes_from_the_journal() {
    let server = TestServer::start(token_settings()).await;
    server.start_instance("kars").await;
    let v = server.journal_version("kars");
    let big = json!({ "node": "B", "outcome": "x".repeat(100_000) });
    let reply = server.post(Who::Token("erin"), "/api/instances/kars/act", &big).await;
    refused(&server, "kars", reply, 413, "too-large", v).await;
    let reply = server.post(Who::Token("erin"), "/api/instances/kars/act", &json!({ "node": "B", "bogus": 1 })).await;
    refused(&server, "kars", reply, 400, "bad-request", v).await;
    server.accepted("erin", "kars", "B", None).await;
    let at = kars::workflow::driver::Clock::now(&*server.clock);
    let dir = server.stop().await;
    // The same journal directory, served again: the instance is where it was.
    let server = TestServer::start_at(token_settings(), at, dir).await;
    assert_eq!(server.status("kars").await["node"], "C");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_are_problem_documents() {
    let server = TestServer::start(token_settings()).await;
    let reply = server.get(Who::Token("erin"), "/api/nothing-here").await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.problem(), "no-route");
    assert!(reply.json()["detail"].as_str().unwrap().contains("`/api/nothing-here`"), "{}", reply.body);
    let reply = serve_support::request(server.addr, "DELETE", "/api/instances", &[], b"").await;
    assert_eq!(reply.status, 405, "{}", reply.body);
    assert_eq!(reply.problem(), "method-not-allowed");
    server.stop().await;
}
