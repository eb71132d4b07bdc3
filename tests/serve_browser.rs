//! `kars serve`'s page in a real browser (feature `serve`): Debian's Chromium driven by
//! playwright-core from `tests/browser` (`npm ci --prefix tests/browser`; no browser download).
//! QA signs in, sees the graph with the current node, completes it; a product manager's page
//! follows without a reload; a developer sees no button; forged form posts get 403 and write
//! nothing. Screenshots go to `target/serve-browser/`.
//!
//! Skips with a printed reason when node, playwright-core or Chromium is missing; fails instead
//! when `KARS_REQUIRE_BROWSER=1` (as in CI).
#![cfg(feature = "serve")]

mod serve_support;

use std::path::Path;

use serde_json::Value;
use serve_support::{TestServer, Who, token, token_settings};

fn browser_missing() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("KARS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !root.join("tests/browser/node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed: run `npm ci --prefix tests/browser`".to_owned());
    }
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at `{chromium}`: run `apt-get install chromium` or set KARS_CHROMIUM"));
    }
    if std::process::Command::new("node").arg("--version").output().is_err() {
        return Some("no `node` on the PATH".to_owned());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qa_completes_a_node_in_the_browser_and_the_pm_page_follows_live() {
    if let Some(reason) = browser_missing() {
        assert!(std::env::var("KARS_REQUIRE_BROWSER").as_deref() != Ok("1"), "KARS_REQUIRE_BROWSER=1 but {reason}");
        println!("skipped: {reason}");
        return;
    }
    let server = TestServer::start(token_settings()).await;
    let id = "kars";
    server.start_instance(id).await;
    // Through the API to Friday's QA node L.
    server.accepted("erin", id, "B", None).await;
    server.accepted("frank", id, "C", None).await;
    server.advance_to("2026-11-24 09:00").await;
    server.accepted("alice", id, "D", None).await;
    server.accepted("alice", id, "E", None).await;
    server.accepted("bob", id, "F", Some("approved")).await;
    server.until_at(id, "H").await;
    let report = serde_json::json!({ "node": "H", "outcome": "succeeded" });
    assert_eq!(server.post(Who::Token("dave"), &format!("/api/instances/{id}/report"), &report).await.status, 200);
    server.advance_to("2026-11-26 09:00").await;
    server.accepted("erin", id, "I", None).await;
    server.advance_to("2026-11-26 17:00").await;
    server.until_at(id, "K").await;
    server.accepted("erin", id, "K", None).await;
    server.advance_to("2026-11-27 09:00").await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/serve-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let args = [
        root.join("tests/browser/page.mjs").display().to_string(),
        format!("http://{}", server.addr),
        id.to_owned(),
        token("carol"),
        token("erin"),
        token("alice"),
        shots.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || std::process::Command::new("node").args(args).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert!(seen.get("error").is_none(), "{seen:#}");
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen:#}");
    // The session cookie is HttpOnly and SameSite=Strict.
    assert_eq!(
        seen["qa_cookie"],
        serde_json::json!([{ "name": "kars_session", "httpOnly": true, "sameSite": "Strict" }])
    );
    // QA sees the graph with L highlighted, and one button for it.
    assert_eq!(seen["qa_node"], "L");
    assert_eq!(seen["qa_buttons"], serde_json::json!(["L:"]));
    assert!(seen["current_in_svg"].as_u64().unwrap() >= 1, "{seen:#}");
    // Forged posts: 403, nothing written.
    assert_eq!(seen["forged_statuses"], serde_json::json!([403, 403]));
    assert_eq!(seen["version_before_forgery"], seen["version_after_forgery"]);
    // The click moved the instance to M, and the PM's page followed without a reload.
    assert_eq!(seen["qa_node_after"], "M");
    assert_eq!(seen["pm_node_after"], "M");
    assert_ne!(seen["pm_drawn_before"], seen["pm_drawn_after"], "the PM's graph was not redrawn");
    assert_eq!(server.status(id).await["node"], "M");
    // The developer sees no button.
    assert_eq!(seen["dev_buttons"], serde_json::json!([]), "{seen:#}");
    server.stop().await;
}
