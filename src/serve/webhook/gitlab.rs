//! GitLab webhooks in: a pipeline that finished reports the deploy (rollback, check suite) it
//! ran, so a deploy's result arrives when the pipeline ends instead of at the next poll.
//!
//! A sender configured with `scheme: gitlab` authenticates as GitLab does: the webhook's
//! *Secret token* itself in `X-Gitlab-Token`, compared (hashed, in constant time) with the
//! sender's secret. GitLab signs nothing and sends no timestamp; since GitLab 17.4 each
//! delivery carries an `Idempotency-Key` that stays the same when GitLab retries or resends
//! it, which tells a replay apart (older versions: `X-Gitlab-Event-UUID`, one per event; a
//! delivery with neither is taken as it is, and a second one of a finished pipeline finds its
//! action reported and changes nothing). The pipeline is the one `GitLabPipelines` started:
//! its variable `KARS_KEY` (or its name, `workflow: { name: $KARS_KEY }`) is the effect's
//! idempotency key (`INSTANCE/RELEASE/NODE/N`), which names the instance and the node. Status
//! `success` is `succeeded`; `failed`, `canceled` and `skipped` are `failed`; any other status
//! (`created`, `pending`, `running`, `manual`, …) is still going. Polling stays the fallback:
//! whichever reports first wins, the other changes nothing.

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::super::auth::same_secret;
use super::super::config::{Sender, sha256_hex};
use super::super::problem::Problem;
use super::{Delivery, Replays, key_names};
use kars_workflow::ActionOutcome;

/// The header carrying the webhook's secret token.
pub const GITLAB_TOKEN_HEADER: &str = "x-gitlab-token";
/// The event header (`Pipeline Hook`, `Push Hook`, …).
pub const GITLAB_EVENT_HEADER: &str = "x-gitlab-event";
/// The delivery's idempotency key (GitLab 17.4 and later), the same on every retry.
pub const GITLAB_IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The event's id (older GitLab versions).
pub const GITLAB_EVENT_UUID_HEADER: &str = "x-gitlab-event-uuid";
/// The pipeline variable that carries the effect's idempotency key.
pub const KEY_VARIABLE: &str = "KARS_KEY";

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    object_kind: Option<String>,
    #[serde(default)]
    object_attributes: Option<Pipeline>,
}

#[derive(Debug, Deserialize)]
struct Pipeline {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    variables: Vec<Variable>,
}

#[derive(Debug, Deserialize)]
struct Variable {
    key: String,
    #[serde(default)]
    value: String,
}

fn refused(kind: &str, detail: String) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, kind, "Webhook refused", detail)
}

/// Checks the delivery's token and that its id is new; records the id and returns it (for
/// [`Replays::forget`] when the delivery is not written), or `None` for a delivery without an
/// id.
///
/// # Errors
/// 401 problems: `bad-token` (no, or a wrong, `X-Gitlab-Token`), `replayed` (an
/// `Idempotency-Key` or `X-Gitlab-Event-UUID` seen before).
pub(crate) fn verify(
    sender: &Sender,
    name: &str,
    headers: &HeaderMap,
    now: DateTime<Utc>,
    replays: &Replays,
) -> Result<Option<String>, Problem> {
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = header(GITLAB_TOKEN_HEADER)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refused("bad-token", format!("no `{GITLAB_TOKEN_HEADER}` header")))?;
    if !same_secret(&sha256_hex(token.as_bytes()), &sender.secret_sha256) {
        return Err(refused(
            "bad-token",
            format!(
                "the token is not sender `{name}`'s secret\nhelp: set the webhook's *Secret token* in GitLab to it"
            ),
        ));
    }
    let id = [GITLAB_IDEMPOTENCY_HEADER, GITLAB_EVENT_UUID_HEADER]
        .into_iter()
        .find_map(|h| header(h).filter(|d| !d.is_empty() && d.len() <= 128));
    id.map(|id| replays.record(&format!("gitlab:{id}"), now)).transpose()
}

/// What a verified delivery of event `event` (the `X-Gitlab-Event` header) asks.
///
/// # Errors
/// A 400 problem for a body that is not a pipeline event, or a finished pipeline whose
/// `KARS_KEY` is not a kars key.
pub(crate) fn read(event: Option<&str>, body: &[u8]) -> Result<Delivery, Problem> {
    if event != Some("Pipeline Hook") {
        return Ok(Delivery::Ignored(format!("event `{}` is not read", event.unwrap_or("(none)"))));
    }
    let parsed: Event = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("the body is not a GitLab pipeline event: {e}")))?;
    let kind = parsed.object_kind.unwrap_or_default();
    let Some(pipeline) = parsed.object_attributes.filter(|_| kind == "pipeline") else {
        return Err(Problem::bad_request(format!(
            "a `Pipeline Hook` whose `object_kind` is `{}`, not `pipeline`, or without `object_attributes`",
            kind.escape_debug()
        )));
    };
    let id = pipeline.id.map_or_else(|| "?".to_owned(), |id| id.to_string());
    let status = pipeline.status.unwrap_or_default();
    let outcome = match status.as_str() {
        "success" => ActionOutcome::Succeeded,
        "failed" | "canceled" | "skipped" => ActionOutcome::Failed,
        other => return Ok(Delivery::Ignored(format!("pipeline {id} is `{}`, not finished", other.escape_debug()))),
    };
    let variable = pipeline.variables.into_iter().find(|v| v.key == KEY_VARIABLE).map(|v| v.value);
    let key = match (variable, pipeline.name) {
        (Some(key), _) => key,
        (None, Some(name)) if key_names(&name).is_some() => name,
        (None, _) => {
            return Ok(Delivery::Ignored(format!(
                "pipeline {id} has no `{KEY_VARIABLE}` variable and no kars key for its name: kars did not start it"
            )));
        }
    };
    let Some((instance, node)) = key_names(&key) else {
        return Err(Problem::bad_request(format!(
            "pipeline {id}'s `{KEY_VARIABLE}` `{}` is not a kars key (`INSTANCE/RELEASE/NODE/N`)",
            key.escape_debug()
        )));
    };
    Ok(Delivery::Completed { instance: instance.to_owned(), node: node.to_owned(), key: key.clone(), outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(status: &str, variables: &[(&str, &str)], name: Option<&str>) -> Vec<u8> {
        let variables: Vec<_> = variables.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
        json!({
            "object_kind": "pipeline",
            "object_attributes": { "id": 31, "ref": "main", "status": status, "name": name, "variables": variables },
        })
        .to_string()
        .into_bytes()
    }

    const HOOK: Option<&str> = Some("Pipeline Hook");

    #[test]
    fn a_finished_pipeline_names_its_instance_node_and_outcome() {
        let done = pipeline("success", &[("KARS_NODE", "H"), ("KARS_KEY", "kars/2026-W48/H/1")], None);
        assert_eq!(
            read(HOOK, &done).unwrap(),
            Delivery::Completed {
                key: "kars/2026-W48/H/1".into(),
                instance: "kars".into(),
                node: "H".into(),
                outcome: ActionOutcome::Succeeded
            }
        );
        for status in ["failed", "canceled", "skipped"] {
            let ended = pipeline(status, &[("KARS_KEY", "kars/2026-W48/H/1")], None);
            assert!(
                matches!(read(HOOK, &ended).unwrap(), Delivery::Completed { outcome: ActionOutcome::Failed, .. }),
                "{status}"
            );
        }
        // Named after the key, its variables not in the payload.
        let named = pipeline("success", &[], Some("kars/2026-W48/H/2"));
        assert!(matches!(read(HOOK, &named).unwrap(), Delivery::Completed { key, .. } if key == "kars/2026-W48/H/2"));
    }

    #[test]
    fn pipelines_still_going_or_not_started_by_kars_and_other_events_are_ignored() {
        for status in ["created", "pending", "running", "manual", "waiting_for_resource"] {
            let going = pipeline(status, &[("KARS_KEY", "kars/2026-W48/H/1")], None);
            assert!(matches!(read(HOOK, &going).unwrap(), Delivery::Ignored(why) if why.contains(status)));
        }
        let push_pipeline = pipeline("success", &[], Some("Pipeline for branch: main"));
        assert!(matches!(read(HOOK, &push_pipeline).unwrap(), Delivery::Ignored(why) if why.contains("KARS_KEY")));
        assert!(matches!(read(Some("Push Hook"), b"{}").unwrap(), Delivery::Ignored(_)));
        assert!(matches!(read(None, b"{}").unwrap(), Delivery::Ignored(_)));
        let bad_key = pipeline("success", &[("KARS_KEY", "deploy")], None);
        assert_eq!(read(HOOK, &bad_key).unwrap_err().doc().status, 400);
        assert_eq!(read(HOOK, br#"{"object_kind":"push"}"#).unwrap_err().doc().status, 400);
        assert_eq!(read(HOOK, b"not json").unwrap_err().doc().status, 400);
    }

    #[test]
    fn the_token_is_the_secret_and_an_idempotency_key_is_seen_once() {
        let sender = Sender::new("gl", "dave".parse().unwrap(), b"0123456789abcdef").unwrap();
        let (now, replays) = (DateTime::from_timestamp(1_700_000_000, 0).unwrap(), Replays::default());
        let mut headers = HeaderMap::new();
        assert_eq!(verify(&sender, "gl", &headers, now, &replays).unwrap_err().short_kind(), "bad-token");
        headers.insert(GITLAB_TOKEN_HEADER, "0123456789abcdeX".parse().unwrap());
        assert_eq!(verify(&sender, "gl", &headers, now, &replays).unwrap_err().short_kind(), "bad-token");
        headers.insert(GITLAB_TOKEN_HEADER, "0123456789abcdef".parse().unwrap());
        // Without an id (GitLab before 17.4 and without an event id): taken, nothing recorded.
        assert_eq!(verify(&sender, "gl", &headers, now, &replays).unwrap(), None);
        headers.insert(GITLAB_EVENT_UUID_HEADER, "e-1".parse().unwrap());
        headers.insert(GITLAB_IDEMPOTENCY_HEADER, "f7b1c7e2-0000-4000-8000-000000000001".parse().unwrap());
        let recorded = verify(&sender, "gl", &headers, now, &replays).unwrap();
        assert_eq!(recorded.as_deref(), Some("gitlab:f7b1c7e2-0000-4000-8000-000000000001"));
        assert_eq!(verify(&sender, "gl", &headers, now, &replays).unwrap_err().short_kind(), "replayed");
        // Forgotten (not written), the same delivery may come again.
        replays.forget(recorded.as_deref().unwrap());
        assert!(verify(&sender, "gl", &headers, now, &replays).is_ok());
    }
}
