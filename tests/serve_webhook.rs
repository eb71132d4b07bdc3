//! Signed webhooks into `kars serve` (feature `serve`): a CI system reports H's deploy with an
//! HMAC-SHA256 over `TIMESTAMP.BODY`; a bad signature, a stale timestamp, a replay and a
//! sender whose person may not report are refused, and none of them writes anything. GitHub's
//! `workflow_run` and GitLab's `Pipeline Hook` deliveries report the deploy their run ran.
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

/// A server with `settings` whose instance `kars` waits at the production deploy H (Tuesday
/// 09:00), the action a webhook reports.
async fn at_the_deploy(settings: kars::serve::Settings) -> TestServer {
    let server = TestServer::start(settings).await;
    to_the_deploy(&server).await;
    server.until_at("kars", "H").await;
    server
}

/// Starts instance `kars` on `server` and plays its week up to the production deploy H (the
/// approval at F, Tuesday 09:00).
async fn to_the_deploy(server: &TestServer) {
    server.start_instance("kars").await;
    server.accepted("erin", "kars", "B", None).await;
    server.accepted("frank", "kars", "C", None).await;
    server.advance_to("2026-11-24 09:00").await;
    server.accepted("alice", "kars", "D", None).await;
    server.accepted("alice", "kars", "E", None).await;
    server.accepted("bob", "kars", "F", Some("approved")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_report_results_and_forgeries_write_nothing() {
    let mut settings = token_settings();
    // The CI system reports as dave (DevOps); a QA bot reports as carol, who may not report H.
    settings.senders.insert("ci".to_owned(), Sender::new("ci", "dave".parse().unwrap(), CI_SECRET).unwrap());
    settings
        .senders
        .insert("qa-bot".to_owned(), Sender::new("qa-bot", "carol".parse().unwrap(), QA_BOT_SECRET).unwrap());
    let server = at_the_deploy(settings).await;

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

const GITHUB_SECRET: &[u8] = b"github-secret-0123456789";

async fn deliver_github(server: &TestServer, event: &str, delivery: &str, body: &[u8], signature: &str) -> Reply {
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        (kars::serve::github_hook::GITHUB_EVENT_HEADER, event.to_owned()),
        (kars::serve::github_hook::GITHUB_DELIVERY_HEADER, delivery.to_owned()),
        (kars::serve::github_hook::GITHUB_SIGNATURE_HEADER, signature.to_owned()),
    ];
    request(server.addr, "POST", "/hooks/github", &headers, body).await
}

fn run(key: &str, action: &str, conclusion: Option<&str>) -> Vec<u8> {
    json!({ "action": action, "workflow_run": { "id": 30433642, "display_title": key, "status": action, "conclusion": conclusion } })
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_workflow_run_reports_the_deploy_it_ran() {
    use kars::serve::github_hook::sign_github;
    let mut settings = token_settings();
    let github = Sender::new("github", "dave".parse().unwrap(), GITHUB_SECRET).unwrap();
    settings.senders.insert("github".to_owned(), github.with_scheme(kars::serve::Scheme::Github));
    let server = at_the_deploy(settings).await;
    let v = server.journal_version("kars");

    // A ping, and the run still in progress: nothing to report.
    let reply = deliver_github(&server, "ping", "d-1", b"{}", &sign_github(GITHUB_SECRET, b"{}")).await;
    assert_eq!((reply.status, reply.json()["ignored"].is_string()), (200, true), "{}", reply.body);
    let going = run("kars/2026-W48/H/1", "in_progress", None);
    let reply = deliver_github(&server, "workflow_run", "d-2", &going, &sign_github(GITHUB_SECRET, &going)).await;
    assert_eq!((reply.status, reply.json()["ignored"].is_string()), (200, true), "{}", reply.body);
    assert_eq!(server.journal_version("kars"), v);

    // The completed run, signed with another secret, or over another body: refused.
    let done = run("kars/2026-W48/H/1", "completed", Some("success"));
    let reply =
        deliver_github(&server, "workflow_run", "d-3", &done, &sign_github(b"not-the-github-secret", &done)).await;
    refused(&server, &reply, 401, "bad-signature", v);
    let reply = deliver_github(&server, "workflow_run", "d-3", &done, &sign_github(GITHUB_SECRET, b"{}")).await;
    refused(&server, &reply, 401, "bad-signature", v);
    // A run for an action that does not wait: acknowledged, nothing written.
    let other = run("kars/2026-W48/Y/1", "completed", Some("success"));
    let reply = deliver_github(&server, "workflow_run", "d-4", &other, &sign_github(GITHUB_SECRET, &other)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["ignored"].as_str().unwrap().contains("does not wait"), "{}", reply.body);
    assert_eq!(server.journal_version("kars"), v);

    // The genuine delivery reports H as its effect, and the week moves on.
    let signature = sign_github(GITHUB_SECRET, &done);
    let reply = deliver_github(&server, "workflow_run", "d-5", &done, &signature).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["node"], "I", "{}", reply.body);
    let history = server.get(serve_support::Who::Token("dave"), "/api/instances/kars/history").await;
    assert!(history.body.contains(r#""effect":{"key":"kars/2026-W48/H/1"}"#), "{}", history.body);
    // The same delivery again is a replay; a new delivery of the same run changes nothing.
    let v = server.journal_version("kars");
    let reply = deliver_github(&server, "workflow_run", "d-5", &done, &signature).await;
    refused(&server, &reply, 401, "replayed", v);
    let reply = deliver_github(&server, "workflow_run", "d-6", &done, &signature).await;
    assert_eq!((reply.status, reply.json()["ignored"].is_string()), (200, true), "{}", reply.body);
    assert_eq!(server.journal_version("kars"), v);
    server.stop().await;
}

const GITLAB_TOKEN: &str = "gitlab-token-0123456789";

/// A GitLab delivery: `token` in `X-Gitlab-Token` (none when empty), `key` in
/// `Idempotency-Key`.
async fn deliver_gitlab(server: &TestServer, event: &str, key: &str, body: &[u8], token: &str) -> Reply {
    use kars::serve::webhook::gitlab::{GITLAB_EVENT_HEADER, GITLAB_IDEMPOTENCY_HEADER, GITLAB_TOKEN_HEADER};
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        (GITLAB_EVENT_HEADER, event.to_owned()),
        (GITLAB_IDEMPOTENCY_HEADER, key.to_owned()),
    ];
    if !token.is_empty() {
        headers.push((GITLAB_TOKEN_HEADER, token.to_owned()));
    }
    request(server.addr, "POST", "/hooks/gitlab", &headers, body).await
}

/// A pipeline event as GitLab sends it for a pipeline `GitLabPipelines` started.
fn pipeline(key: &str, status: &str) -> Vec<u8> {
    json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 31, "iid": 3, "name": key, "ref": "main", "tag": false, "status": status,
            "source": "api", "stages": ["deploy"],
            "variables": [{ "key": "KARS_KEY", "value": key }, { "key": "KARS_NODE", "value": "H" }],
        },
        "project": { "id": 1, "path_with_namespace": "kars/app" },
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_pipeline_reports_the_deploy_it_ran() {
    let mut settings = token_settings();
    let gitlab = Sender::new("gitlab", "dave".parse().unwrap(), GITLAB_TOKEN.as_bytes()).unwrap();
    settings.senders.insert("gitlab".to_owned(), gitlab.with_scheme(kars::serve::Scheme::Gitlab));
    let server = at_the_deploy(settings).await;
    let v = server.journal_version("kars");
    let hook = "Pipeline Hook";

    // The pipeline still running, another event, a pipeline kars did not start: nothing to do.
    let running = pipeline("kars/2026-W48/H/1", "running");
    let reply = deliver_gitlab(&server, hook, "k-1", &running, GITLAB_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["ignored"].as_str().unwrap().contains("`running`"), "{}", reply.body);
    let reply = deliver_gitlab(&server, "Push Hook", "k-2", b"{}", GITLAB_TOKEN).await;
    assert_eq!((reply.status, reply.json()["ignored"].is_string()), (200, true), "{}", reply.body);
    let push =
        json!({ "object_kind": "pipeline", "object_attributes": { "id": 32, "status": "success", "variables": [] } });
    let reply = deliver_gitlab(&server, hook, "k-3", push.to_string().as_bytes(), GITLAB_TOKEN).await;
    assert!(reply.json()["ignored"].as_str().unwrap().contains("KARS_KEY"), "{}", reply.body);
    assert_eq!(server.journal_version("kars"), v);

    // The finished pipeline with a wrong token, or none: refused.
    let done = pipeline("kars/2026-W48/H/1", "success");
    let reply = deliver_gitlab(&server, hook, "k-4", &done, "not-the-gitlab-token-000").await;
    refused(&server, &reply, 401, "bad-token", v);
    let reply = deliver_gitlab(&server, hook, "k-4", &done, "").await;
    refused(&server, &reply, 401, "bad-token", v);
    // A pipeline for an action that does not wait: acknowledged, nothing written; one for an
    // instance not hosted here: 404, nothing written.
    let other = pipeline("kars/2026-W48/Y/1", "failed");
    let reply = deliver_gitlab(&server, hook, "k-5", &other, GITLAB_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["ignored"].as_str().unwrap().contains("does not wait"), "{}", reply.body);
    let elsewhere = pipeline("nowhere/2026-W48/H/1", "success");
    let reply = deliver_gitlab(&server, hook, "k-6", &elsewhere, GITLAB_TOKEN).await;
    refused(&server, &reply, 404, "unknown-instance", v);

    // The genuine delivery reports H as its effect, and the week moves on.
    let reply = deliver_gitlab(&server, hook, "k-7", &done, GITLAB_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["node"], "I", "{}", reply.body);
    let history = server.get(serve_support::Who::Token("dave"), "/api/instances/kars/history").await;
    assert!(history.body.contains(r#""effect":{"key":"kars/2026-W48/H/1"}"#), "{}", history.body);
    // GitLab retrying the same delivery (same `Idempotency-Key`) is a replay; a new delivery
    // of the same pipeline changes nothing.
    let v = server.journal_version("kars");
    let reply = deliver_gitlab(&server, hook, "k-7", &done, GITLAB_TOKEN).await;
    refused(&server, &reply, 401, "replayed", v);
    let reply = deliver_gitlab(&server, hook, "k-8", &done, GITLAB_TOKEN).await;
    assert_eq!((reply.status, reply.json()["ignored"].is_string()), (200, true), "{}", reply.body);
    assert_eq!(server.journal_version("kars"), v);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn may_judges_what_the_forge_reports_against_what_the_merge_requires() {
    use serve_support::Who;
    // Feature merges into kars-dev need the team lead's approval and `ci`; frank (the team
    // lead) is `frank-k` on GitHub.
    let spec = serve_support::SPEC
        .replace(
            "action: { merge_pull_request: { from: feature, to: dev } }",
            "action: { merge_pull_request: { from: feature, to: dev, requires: { approved_by: [team_lead], checks: [ci] } } }",
        )
        .replace(
            "frank: { name: Frank, roles: [team_lead, developer], logins: [frank] }",
            "frank: { name: Frank, roles: [team_lead, developer], logins: [frank], github: frank-k }",
        );
    let at = serve_support::local("2026-11-23 08:00");
    let server = TestServer::start_spec(token_settings(), at, tempfile::tempdir().unwrap(), spec).await;
    server.start_instance("kars").await;
    let may = |query: &'static str| {
        let server = &server;
        async move {
            let path = format!("/api/instances/kars/may?source=feature%2Flogin&target=kars-dev{query}");
            server.get(Who::Token("bob"), &path).await
        }
    };
    // Without the forge's word: the windows alone, as before (no `unmet` key).
    let plain = may("").await.json();
    assert_eq!(plain["allowed"], true, "{plain}");
    assert!(plain.get("unmet").is_none(), "{plain}");
    // `frank` is nobody's GitHub login on the roster; `ci` still runs.
    let lacking = may("&approvals=frank,bob&checks=ci:pending").await.json();
    assert_eq!(lacking["allowed"], false, "{lacking}");
    assert_eq!(
        lacking["unmet"],
        json!([{ "role_approval": { "role": "team_lead" } }, { "check": { "name": "ci", "state": "pending" } }])
    );
    // The team lead approved (logins compare without case) and `ci` passed.
    let met = may("&approvals=Frank-K&checks=ci:passed,lint:failed").await.json();
    assert_eq!((met["allowed"].clone(), met["unmet"].clone()), (json!(true), json!([])), "{met}");
    // A malformed check or forge is a 400 that says how to write it.
    let bad = may("&checks=ci").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("NAME:STATE"), "{}", bad.body);
    assert_eq!(may("&approvals=x&forge=bitbucket").await.status, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_completes_a_deploy_whose_runner_is_still_polling_and_the_runner_changes_nothing() {
    use kars::serve::github_hook::sign_github;
    use kars::workflow::adapter::{AdapterError, RecordingNotifier};
    use kars::workflow::driver::{Adapters, Entry, Operation, OperationsFn};
    use std::sync::Arc;
    // H's deploy runs on GitHub Actions and is still going at every poll: its runner waits
    // ten minutes between polls (the service holds the effect in flight meanwhile).
    let adapters: kars::serve::AdapterFactory = Arc::new(|_, _| {
        Adapters::new(RecordingNotifier::new()).with_operations(OperationsFn(|op: &Operation| match op.node.as_str() {
            "H" => Err(AdapterError::throttled(
                "github actions",
                "run",
                Some(&op.key),
                "run 7 is still `in_progress`",
                std::time::Duration::from_secs(600),
            )),
            "Y" | "AB" | "AD" => Ok(None),
            _ => Ok(Some(kars::workflow::ActionOutcome::Succeeded)),
        }))
    });
    let mut settings = token_settings();
    let github = Sender::new("github", "dave".parse().unwrap(), GITHUB_SECRET).unwrap();
    settings.senders.insert("github".to_owned(), github.with_scheme(kars::serve::Scheme::Github));
    let at = serve_support::local("2026-11-23 08:00");
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(settings, at, dir, serve_support::SPEC.to_owned(), adapters).await;
    to_the_deploy(&server).await;
    // At H, its runner holding the effect between polls.
    let mut polling = false;
    for _ in 0..2000 {
        let status = server.status("kars").await;
        if status["node"] == "H" && status["effects_in_flight"] == 1 {
            polling = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(polling, "{}", server.status("kars").await);

    let done = run("kars/2026-W48/H/1", "completed", Some("success"));
    let reply = deliver_github(&server, "workflow_run", "d-1", &done, &sign_github(GITHUB_SECRET, &done)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["node"], "I", "{}", reply.body);
    // The runner's next poll (ten minutes on) finds the effect acknowledged: nothing more.
    server.advance_to("2026-11-24 09:30").await;
    server.until_at("kars", "I").await;
    let store = kars::workflow::journal::FileStore::open_read_only(server.dir.path()).unwrap();
    let stored =
        kars::workflow::journal::Store::read(&store, &kars::workflow::InstanceId::new("kars").unwrap()).unwrap();
    let acks: Vec<String> = stored
        .records
        .iter()
        .filter_map(|bytes| match serde_json::from_slice::<Entry>(bytes).unwrap() {
            Entry::Done(done) if done.key.as_str() == "kars/2026-W48/H/1" => Some(done.status.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(acks, ["done, succeeded"], "one acknowledgement, the webhook's");
    server.stop().await;
}
