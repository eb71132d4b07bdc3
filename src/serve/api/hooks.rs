//! Webhooks in (`POST /hooks/{sender}`): kars's own signed reports, GitHub `workflow_run` and
//! GitLab pipeline deliveries, each verified by its sender's scheme, then written as the
//! report of the action (or the effect) it names.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kars_spec::NodeId;
use kars_workflow::driver::{Clock as _, SystemClock};
use serde_json::{Value, json};

use super::super::auth::Principal;
use super::super::config::Scheme;
use super::super::problem::Problem;
use super::super::{App, ServeStore, Sharing, github_hook, webhook};
use super::{ApiResult, Write, find, json_body, json_with_version, parse_json, status_json, write};

pub(crate) async fn hook<S: ServeStore>(
    State(app): State<App<S>>,
    Path(sender): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let Some(known) = app.inner.settings.senders.get(&sender) else {
        return Err(Problem::unauthenticated(format!("no webhook sender `{sender}` is configured")));
    };
    // A sender signs with its own real clock, whatever clock the instances run on; replays
    // are remembered by it too.
    let now = SystemClock.now();
    let event = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match known.scheme {
        Scheme::Github => {
            let delivery = github_hook::verify(known, &sender, &headers, &body, now, &app.inner.replays)?;
            let read = github_hook::read(event(github_hook::GITHUB_EVENT_HEADER), &body);
            return forge_hook(&app, Some(delivery), read).await;
        }
        Scheme::Gitlab => {
            let delivery = webhook::gitlab::verify(known, &sender, &headers, now, &app.inner.replays)?;
            let read = webhook::gitlab::read(event(webhook::gitlab::GITLAB_EVENT_HEADER), &body);
            return forge_hook(&app, delivery, read).await;
        }
        Scheme::Kars => {}
    }
    let skew = app.inner.settings.limits.webhook_skew_seconds;
    let signature = webhook::verify(known, &sender, &headers, &body, now, skew, &app.inner.replays)?;
    let written = async {
        let report: webhook::Report = parse_json(&headers, &body)?;
        let hosted = find(&app, &report.instance).await?;
        let principal = Principal::Person(known.person.to_string());
        write(&app, &hosted, principal, Write::Report, &report.node, Some(report.outcome), None).await
    };
    match written.await {
        Ok(status) => Ok(json_with_version(StatusCode::OK, status)),
        Err(problem) => {
            // Not written: the sender may deliver the same webhook again.
            app.inner.replays.forget(&signature);
            Err(problem)
        }
    }
}

/// A forge's delivery (a sender with `scheme: github` or `gitlab`), verified as `delivery`
/// (its id, if it has one) and read as `read`: a finished run reports its effect's result
/// ([`report_effect`]), anything else is acknowledged and ignored. A delivery not written may
/// be delivered again.
async fn forge_hook<S: ServeStore>(
    app: &App<S>,
    delivery: Option<String>,
    read: Result<webhook::Delivery, Problem>,
) -> ApiResult {
    let written = async {
        match read? {
            webhook::Delivery::Ignored(why) => Ok(json!({ "ignored": why })),
            webhook::Delivery::Completed { key, instance, node, outcome } => {
                report_effect(app, &key, &instance, &node, outcome).await
            }
        }
    };
    match written.await {
        Ok(value) => Ok(json_body(value).into_response()),
        Err(problem) => {
            if let Some(delivery) = &delivery {
                app.inner.replays.forget(delivery);
            }
            Err(problem)
        }
    }
}

/// A forge's run titled (GitHub) or tagged (GitLab) with the effect's idempotency `key`
/// finished with `outcome`: the result of that effect, reported as the effect's own
/// ([`kars_workflow::Reporter::Effect`]). It acknowledges the effect when this server still
/// holds it (pending, or polled by a runner, whose later answer then changes nothing), or
/// reports the result of an effect handed over earlier. A run whose action no longer waits
/// (polling reported it first, or the instance moved on) is answered `{"ignored": WHY}` and
/// writes nothing; the status after the write otherwise.
async fn report_effect<S: ServeStore>(
    app: &App<S>,
    key: &str,
    instance: &str,
    node: &str,
    outcome: kars_workflow::ActionOutcome,
) -> Result<Value, Problem> {
    let hosted = find(app, instance).await?;
    let node_id = NodeId::new(node.to_owned()).map_err(|e| Problem::bad_request(e.to_string()))?;
    let shared = app.inner.settings.sharing == Sharing::Shared;
    let wanted = key.to_owned();
    let reported = hosted
        .handle
        .with(move |d| {
            if shared {
                d.catch_up().map_err(|e| Problem::driver(&e, d.version()))?;
            }
            let waiting = d
                .instance()
                .workflow()
                .node_index(node_id.as_str())
                .and_then(|index| d.instance().result_key_at(index))
                .filter(|k| k.as_str() == wanted);
            let Some(effect_key) = waiting else {
                return Ok(None);
            };
            let result = kars_workflow::driver::EffectOutcome {
                status: kars_workflow::driver::EffectStatus::Reported(outcome),
                result: Some(outcome),
                log: Vec::new(),
            };
            d.complete_effect(&effect_key, result).map_err(|e| Problem::driver(&e, d.version()))?;
            // Handed over earlier (acknowledged): the result is reported as the effect's.
            if d.instance().workflow().node_index(node_id.as_str()).and_then(|i| d.instance().result_key_at(i))
                == Some(effect_key.clone())
            {
                let reporter = kars_workflow::Reporter::Effect { key: effect_key };
                d.report(node_id, outcome, reporter).map_err(|e| Problem::driver(&e, d.version()))?;
            }
            Ok(Some(d.version()))
        })
        .await?;
    match reported {
        Some(version) => {
            hosted.announce(version);
            Ok(status_json(app, &hosted).await)
        }
        None => Ok(json!({ "ignored": format!("`{node}` of `{instance}` does not wait for the result of `{key}`") })),
    }
}
