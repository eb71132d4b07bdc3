//! GitHub webhooks in: a `workflow_run` that completed reports the deploy (rollback, check
//! suite) it ran, so a deploy's result arrives when the run ends instead of at the next poll.
//!
//! A sender configured with `scheme: github` signs as GitHub does: `X-Hub-Signature-256:
//! sha256=HEX`, the HMAC-SHA256 with the sender's secret over the body. GitHub's webhooks carry
//! no timestamp; a delivery is told apart by its `X-GitHub-Delivery` id, and an id seen before
//! is a replay. The run is the one `GitHubActions` dispatched: its title (`run-name`) is the
//! effect's idempotency key (`INSTANCE/RELEASE/NODE/N`), which names the instance and the node.
//! Its conclusion `success` is `succeeded`, anything else `failed`. Polling stays the fallback:
//! whichever reports first wins, the other changes nothing.

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::config::Sender;
use super::problem::Problem;
use super::webhook::{Delivery, Replays, key_names};
use kars_workflow::ActionOutcome;

/// The signature header GitHub sends.
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event header (`workflow_run`, `ping`).
pub const GITHUB_EVENT_HEADER: &str = "x-github-event";
/// The delivery id header.
pub const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    workflow_run: Option<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
}

fn refused(kind: &str, detail: String) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, kind, "Webhook refused", detail)
}

/// The GitHub signature of `body` with `secret` (for tests and senders).
#[must_use]
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("sha256={}", super::auth::hex(ring::hmac::sign(&key, body).as_ref()))
}

/// Checks the delivery's signature and that its id is new; records the id and returns it
/// (for [`Replays::forget`] when the delivery is not written).
///
/// # Errors
/// 401 problems: `bad-signature` (no, or a wrong, `X-Hub-Signature-256`), `replayed` (an id
/// seen before), and `bad-signature` for a delivery without an id.
pub(crate) fn verify(
    sender: &Sender,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    replays: &Replays,
) -> Result<String, Problem> {
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let signature = header(GITHUB_SIGNATURE_HEADER)
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(super::webhook::unhex)
        .ok_or_else(|| refused("bad-signature", format!("no `{GITHUB_SIGNATURE_HEADER}: sha256=HEX` header")))?;
    ring::hmac::verify(&sender.key, body, &signature).map_err(|_| {
        refused("bad-signature", format!("the signature does not match sender `{name}`'s secret over the body"))
    })?;
    let delivery = header(GITHUB_DELIVERY_HEADER)
        .filter(|d| !d.is_empty() && d.len() <= 128)
        .ok_or_else(|| refused("bad-signature", format!("no `{GITHUB_DELIVERY_HEADER}` header")))?;
    replays.record(&format!("github:{delivery}"), now)
}

/// What a verified delivery of event `event` (the `X-GitHub-Event` header) asks.
///
/// # Errors
/// A 400 problem for a body that is not a GitHub event, or a completed run whose title is not
/// a kars key.
pub(crate) fn read(event: Option<&str>, body: &[u8]) -> Result<Delivery, Problem> {
    match event {
        Some("workflow_run") => {}
        Some("ping") => return Ok(Delivery::Ignored("ping: the webhook is set up".to_owned())),
        other => return Ok(Delivery::Ignored(format!("event `{}` is not read", other.unwrap_or("(none)")))),
    }
    let parsed: Event = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("the body is not a `workflow_run` event: {e}")))?;
    let action = parsed.action.unwrap_or_default();
    let Some(run) = parsed.workflow_run.filter(|_| action == "completed") else {
        return Ok(Delivery::Ignored(format!("a run that is `{action}`, not `completed`")));
    };
    let key = run.display_title.unwrap_or_default();
    let Some((instance, node)) = key_names(&key) else {
        return Err(Problem::bad_request(format!(
            "the run's title `{}` is not a kars key (`INSTANCE/RELEASE/NODE/N`)\nhelp: set `run-name: ${{{{ inputs.kars_key }}}}` in the dispatched workflow",
            key.escape_debug()
        )));
    };
    let outcome =
        if run.conclusion.as_deref() == Some("success") { ActionOutcome::Succeeded } else { ActionOutcome::Failed };
    Ok(Delivery::Completed { instance: instance.to_owned(), node: node.to_owned(), key: key.clone(), outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_run_names_its_instance_node_and_outcome() {
        let body =
            br#"{"action":"completed","workflow_run":{"display_title":"kars/2026-W48/H/1","conclusion":"success"}}"#;
        assert_eq!(
            read(Some("workflow_run"), body).unwrap(),
            Delivery::Completed {
                key: "kars/2026-W48/H/1".into(),
                instance: "kars".into(),
                node: "H".into(),
                outcome: ActionOutcome::Succeeded
            }
        );
        let failed =
            br#"{"action":"completed","workflow_run":{"display_title":"kars/2026-W48/H/1","conclusion":"cancelled"}}"#;
        assert!(matches!(
            read(Some("workflow_run"), failed).unwrap(),
            Delivery::Completed { outcome: ActionOutcome::Failed, .. }
        ));
        let running = br#"{"action":"in_progress","workflow_run":{"display_title":"kars/2026-W48/H/1"}}"#;
        assert!(matches!(read(Some("workflow_run"), running).unwrap(), Delivery::Ignored(_)));
        assert!(matches!(read(Some("ping"), b"{}").unwrap(), Delivery::Ignored(_)));
        let untitled = br#"{"action":"completed","workflow_run":{"display_title":"Deploy","conclusion":"success"}}"#;
        assert!(read(Some("workflow_run"), untitled).unwrap_err().doc().detail.contains("run-name"));
    }

    #[test]
    fn github_signatures_are_hmac_sha256_over_the_body() {
        // printf '{}' | openssl dgst -sha256 -hmac 0123456789abcdef
        let sender = Sender::new("gh", "dave".parse().unwrap(), b"0123456789abcdef").unwrap();
        let signature = sign_github(b"0123456789abcdef", b"{}");
        let mut headers = HeaderMap::new();
        headers.insert(GITHUB_SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(GITHUB_DELIVERY_HEADER, "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap());
        let (now, replays) = (DateTime::from_timestamp(1_700_000_000, 0).unwrap(), Replays::default());
        assert!(verify(&sender, "gh", &headers, b"{}", now, &replays).is_ok());
        assert_eq!(verify(&sender, "gh", &headers, b"{}", now, &replays).unwrap_err().short_kind(), "replayed");
        let tampered = verify(&sender, "gh", &headers, b"{ }", now, &Replays::default()).unwrap_err();
        assert_eq!(tampered.short_kind(), "bad-signature");
    }
}
