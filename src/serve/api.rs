//! The JSON API's routes; the layers around them are in `layers.rs`. Every handler resolves
//! the caller first ([`super::auth`]) and lets the engine decide; refusals are [`Problem`]s.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use kars_spec::NodeId;
use kars_workflow::driver::read_entries;
use kars_workflow::{InstanceId, MergeRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Principal, authenticate};
use super::problem::Problem;
use super::{App, ServeStore, Sharing, hosted, layers, metrics, page, query, status};

/// The address the request came from (unspecified when unknown, which no proxy list holds).
mod hooks;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub IpAddr);

pub(crate) type ApiResult = Result<Response, Problem>;

/// Every route of the service.
pub(crate) fn router<S: ServeStore>(app: App<S>) -> Router {
    let limits = app.inner.settings.limits;
    let timed = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .route("/openapi.json", get(openapi_doc))
        .route("/api/instances", get(list::<S>).post(start::<S>))
        .route("/api/instances/{id}", get(status_of::<S>))
        .route("/api/instances/{id}/act", post(act::<S>))
        .route("/api/instances/{id}/report", post(report::<S>))
        .route("/api/instances/{id}/history", get(history::<S>))
        .route("/api/instances/{id}/mermaid", get(mermaid::<S>))
        .route("/api/instances/{id}/may", get(may::<S>))
        .route("/hooks/{sender}", post(hooks::hook::<S>))
        .merge(page::routes::<S>())
        .layer(from_fn_with_state(limits, layers::timeout));
    timed
        .merge(page::live_routes::<S>())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(from_fn_with_state(app.clone(), layers::observe::<S>))
        .with_state(app)
}

/// The caller of an API request.
pub(crate) fn caller<S: ServeStore>(app: &App<S>, headers: &HeaderMap, peer: Peer) -> Result<Principal, Problem> {
    authenticate(&app.inner.settings, headers, peer.0)
}

/// 404 for a path the service does not have, as a problem document like every other refusal.
async fn no_route(uri: axum::http::Uri) -> Response {
    Problem::not_found(
        "no-route",
        format!("the service has no `{}`\nhelp: the routes are listed in `/openapi.json`", uri.path()),
    )
    .into_response()
}

/// 405 for a method a path does not take.
async fn no_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "`{}` does not take `{method}`\nhelp: the routes and their methods are listed in `/openapi.json`",
            uri.path()
        ),
    )
    .into_response()
}

async fn health() -> Response {
    json_body(json!({ "status": "ok" })).into_response()
}

async fn ready<S: ServeStore>(State(app): State<App<S>>) -> Response {
    if app.inner.ready.load(std::sync::atomic::Ordering::SeqCst) {
        json_body(json!({ "status": "ready" })).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready", "the server is starting or stopping")
            .into_response()
    }
}

async fn metrics_text<S: ServeStore>(State(app): State<App<S>>) -> Response {
    let body = metrics::render(&app).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn openapi_doc() -> Response {
    json_body(super::openapi::document()).into_response()
}

/// The hosted instance `id`, or 404. On a [`Sharing::Shared`] store it first catches up with
/// what other replicas wrote, and opens an instance another replica started.
pub(crate) async fn find<S: ServeStore>(app: &App<S>, id: &str) -> Result<std::sync::Arc<hosted::Hosted<S>>, Problem> {
    let shared = app.inner.settings.sharing == Sharing::Shared;
    let hosted = match app.instance(id).await {
        Some(hosted) => {
            if shared {
                catch_up(app, &hosted).await?;
            }
            Some(hosted)
        }
        None if shared => app.adopt(id).await.map_err(|e| Problem::driver(&e, 0))?,
        None => None,
    };
    hosted.ok_or_else(|| Problem::not_found("unknown-instance", format!("no instance `{id}` is hosted here")))
}

/// Rebuilds `hosted` from the store when another replica advanced it; tells live pages. The
/// version is compared without holding the driver, so reads of a current instance do not queue.
async fn catch_up<S: ServeStore>(app: &App<S>, hosted: &hosted::Hosted<S>) -> Result<(), Problem> {
    let (id, held) = hosted.handle.read(|d| (d.id().clone(), d.version())).await;
    let store = app.inner.store.clone();
    let stored = hosted::blocking(move || store.version(&id))
        .await
        .map_err(|e| Problem::driver(&kars_workflow::driver::DriverError::Journal(e), held))?;
    if stored == held {
        return Ok(());
    }
    let caught = hosted
        .handle
        .with(|d| d.catch_up().map(|moved| moved.then(|| d.version())).map_err(|e| Problem::driver(&e, d.version())))
        .await?;
    if let Some(version) = caught {
        hosted.announce(version);
    }
    Ok(())
}

pub(crate) async fn status_json<S: ServeStore>(app: &App<S>, hosted: &hosted::Hosted<S>) -> Value {
    let now = app.inner.clock.now();
    hosted.handle.read(|d| status::status(d, now)).await
}

/// A JSON response.
pub(crate) fn json_body(value: Value) -> Response {
    let body = serde_json::to_vec(&value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_with_version(status: StatusCode, value: Value) -> Response {
    let version = value.get("version").and_then(Value::as_u64);
    let mut response = (status, json_body(value)).into_response();
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

async fn list<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers, peer)?;
    let hosted = every_instance(&app).await?;
    let mut out = Vec::with_capacity(hosted.len());
    for h in hosted {
        let s = status_json(&app, &h).await;
        out.push(json!({
            "id": s["id"], "workflow": s["workflow"], "version": s["version"], "release": s["release"],
            "node": s["node"], "label": s["label"], "waiting": s["waiting"]["text"],
        }));
    }
    Ok(json_body(json!({ "instances": out })).into_response())
}

/// Every instance to list, current: with a shared store, every instance of the store (those
/// another replica started are adopted, the others caught up with its writes); else the ones
/// this server hosts.
pub(crate) async fn every_instance<S: ServeStore>(
    app: &App<S>,
) -> Result<Vec<std::sync::Arc<hosted::Hosted<S>>>, Problem> {
    if app.inner.settings.sharing != Sharing::Shared {
        return Ok(app.inner.instances.read().await.values().cloned().collect());
    }
    let store = app.inner.store.clone();
    let ids = hosted::blocking(move || store.list()).await.map_err(|e| Problem::driver(&e.into(), 0))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match find(app, id.as_str()).await {
            Ok(hosted) => out.push(hosted),
            // Not an instance this server can host (another workflow's, say): not listed.
            Err(problem) if problem.status() == StatusCode::NOT_FOUND => {}
            Err(problem) => return Err(problem),
        }
    }
    Ok(out)
}

/// The JSON body of a write. `Content-Type: application/json` is required: a browser cannot
/// send it cross-site without a preflight (which this server never grants), so a page elsewhere
/// cannot make a signed-in person's browser write through a trusted proxy.
fn parse_json<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, body: &[u8]) -> Result<T, Problem> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as `Content-Type: application/json`".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("the body is not the expected JSON: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: String,
    #[serde(default)]
    id: Option<String>,
}

async fn start<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let principal = caller(&app, &headers, peer)?;
    let body: StartBody = parse_json(&headers, &body)?;
    let Some(flow) = app.inner.workflows.get(&body.workflow) else {
        let known: Vec<&str> = app.inner.workflows.keys().map(String::as_str).collect();
        return Err(Problem::not_found(
            "unknown-workflow",
            format!("no workflow `{}` is served; served: {}", body.workflow, known.join(", ")),
        ));
    };
    let program = &flow.program;
    let actor =
        principal.actor(program.default_roster()).map_err(|e| Problem::forbidden("not-on-roster", e.to_string()))?;
    let managers = program.team_managed_by();
    if !managers.is_empty() && !actor.holds_any(managers) {
        let roles: Vec<String> = managers.iter().map(|r| format!("`{r}`")).collect();
        return Err(Problem::forbidden(
            "role",
            format!(
                "`{}` may not start instances of `{}`, which needs one of the roles {}",
                actor.name(),
                body.workflow,
                roles.join(", ")
            ),
        ));
    }
    let id = InstanceId::new(body.id.as_deref().unwrap_or(&body.workflow))
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    // Creating and hosting run to the end even if the client goes away: a journal created but
    // never hosted would wait, unserved and refusing a second start, for the next restart.
    let (task_app, workflow) = (app.clone(), body.workflow);
    let hosted = tokio::spawn(async move { start_hosted(&task_app, &workflow, id).await })
        .await
        .map_err(|e| Problem::internal(format!("starting the instance stopped: {e}")))??;
    Ok(json_with_version(StatusCode::CREATED, status_json(&app, &hosted).await))
}

/// Creates instance `id` of `workflow` and hosts it, one start at a time.
async fn start_hosted<S: ServeStore>(
    app: &App<S>,
    workflow: &str,
    id: InstanceId,
) -> Result<std::sync::Arc<hosted::Hosted<S>>, Problem> {
    let flow = app
        .inner
        .workflows
        .get(workflow)
        .ok_or_else(|| Problem::not_found("unknown-workflow", format!("no workflow `{workflow}` is served")))?;
    let exists =
        || Problem::new(StatusCode::CONFLICT, "exists", "Instance exists", format!("instance `{id}` exists already"));
    let _guard = app.inner.starting.lock().await;
    if app.instance(id.as_str()).await.is_some() {
        return Err(exists());
    }
    let opened = hosted::create(app, flow, id.clone()).await.map_err(|e| match e {
        // Another replica of a shared store started it first.
        kars_workflow::driver::DriverError::Journal(kars_workflow::journal::JournalError::AlreadyExists { .. }) => {
            exists()
        }
        e => Problem::driver(&e, 0),
    })?;
    Ok(app.host(opened).await)
}

async fn status_of<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers, peer)?;
    let hosted = find(&app, &id).await?;
    Ok(json_with_version(StatusCode::OK, status_json(&app, &hosted).await))
}

/// The body of `act` and `report`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    node: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    expected_version: Option<u64>,
}

/// What a write asks the engine for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Complete a task, take a decision, or report an action's result (by the node's kind).
    Act,
    /// Report a waiting action's result only.
    Report,
}

/// The expected version: `If-Match` (`"3"` or `3`) or the body's `expected_version`; both must
/// agree when both are given.
fn expected_version(headers: &HeaderMap, body: Option<u64>) -> Result<Option<u64>, Problem> {
    let header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or_default().trim().trim_start_matches("W/").trim_matches('"');
            Some(text.parse::<u64>().map_err(|_| {
                Problem::bad_request(format!("`If-Match: {text}` is not a version (the `ETag` of the status)"))
            })?)
        }
    };
    match (header, body) {
        (Some(h), Some(b)) if h != b => {
            Err(Problem::bad_request(format!("`If-Match` says version {h} and the body says {b}")))
        }
        (h, b) => Ok(h.or(b)),
    }
}

/// `principal` writes to `hosted` (the engine decides); returns the status after it.
pub(crate) async fn write<S: ServeStore>(
    app: &App<S>,
    hosted: &std::sync::Arc<hosted::Hosted<S>>,
    principal: Principal,
    what: Write,
    node: &str,
    outcome: Option<String>,
    expected: Option<u64>,
) -> Result<Value, Problem> {
    let node = NodeId::new(node.to_owned()).map_err(|e| Problem::bad_request(e.to_string()))?;
    let shared = app.inner.settings.sharing == Sharing::Shared;
    // The write, the loop's wake-up (for the effects it emits) and the live pages' news run to
    // the end even if the client goes away.
    let task = std::sync::Arc::clone(hosted);
    let written = tokio::spawn(async move {
        let version = task
            .handle
            .with(move |d| {
                // The expected version is compared with the store's, not with this replica's memory.
                if shared {
                    d.catch_up().map_err(|e| Problem::driver(&e, d.version()))?;
                }
                if let Some(expected) = expected
                    && expected != d.version()
                {
                    return Err(Problem::version_conflict(expected, d.version()));
                }
                let actor =
                    principal.actor(d.roster()).map_err(|e| Problem::forbidden("not-on-roster", e.to_string()))?;
                let done = match what {
                    Write::Act => d.act(actor, node, outcome.as_deref()),
                    Write::Report => match outcome.as_deref().map(str::parse) {
                        Some(Ok(result)) => d.report(node, result, kars_workflow::Reporter::Person(actor)),
                        _ => Err(kars_workflow::driver::DriverError::Refused(Box::new(
                            kars_workflow::EngineError::UnknownOutcome {
                                node,
                                given: outcome.clone(),
                                valid: vec!["succeeded".to_owned(), "failed".to_owned()],
                            },
                        ))),
                    },
                };
                done.map(|_| d.version()).map_err(|e| Problem::driver(&e, d.version()))
            })
            .await?;
        task.announce(version);
        Ok::<_, Problem>(())
    });
    written.await.map_err(|e| Problem::internal(format!("the write stopped: {e}")))??;
    Ok(status_json(app, hosted).await)
}

async fn act<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    written(app, peer, id, headers, body, Write::Act).await
}

async fn report<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    written(app, peer, id, headers, body, Write::Report).await
}

async fn written<S: ServeStore>(
    app: App<S>,
    peer: Peer,
    id: String,
    headers: HeaderMap,
    body: Bytes,
    what: Write,
) -> ApiResult {
    let principal = caller(&app, &headers, peer)?;
    let hosted = find(&app, &id).await?;
    let body: ActBody = parse_json(&headers, &body)?;
    let expected = expected_version(&headers, body.expected_version)?;
    let status = write(&app, &hosted, principal, what, &body.node, body.outcome, expected).await?;
    Ok(json_with_version(StatusCode::OK, status))
}

async fn history<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers, peer)?;
    let hosted = find(&app, &id).await?;
    let pairs = query::pairs(raw.as_deref().unwrap_or_default());
    let number = |key: &str, default: u64| -> Result<u64, Problem> {
        query::get(&pairs, key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| Problem::bad_request(format!("`{key}={v}` is not a whole number")))
        })
    };
    let after = number("after", 0)?;
    let limit = number("limit", 100)?.clamp(1, 1000);
    let store = app.inner.store.clone();
    let id = hosted.handle.read(|d| d.id().clone()).await;
    let take = usize::try_from(limit).unwrap_or(1000);
    // Only the page is decoded (and, from PostgreSQL, read).
    let (page, version) =
        hosted::blocking(move || read_entries(&store, &id, after, take)).await.map_err(|e| Problem::driver(&e, 0))?;
    let entries: Vec<Value> = page
        .iter()
        .enumerate()
        .map(|(i, e)| json!({ "version": after.saturating_add(i as u64 + 1), "entry": e }))
        .collect();
    let last = after.saturating_add(entries.len() as u64);
    let next = (last < version).then_some(last);
    Ok(json_body(json!({ "version": version, "entries": entries, "next_after": next })).into_response())
}

async fn mermaid<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers, peer)?;
    let hosted = find(&app, &id).await?;
    let now = app.inner.clock.now();
    let text = hosted.handle.read(|d| status::mermaid(d, &hosted.spec, now)).await;
    Ok(([(header::CONTENT_TYPE, "text/vnd.mermaid; charset=utf-8")], text).into_response())
}

async fn may<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers, peer)?;
    let hosted = find(&app, &id).await?;
    let pairs = query::pairs(raw.as_deref().unwrap_or_default());
    let (Some(source), Some(target)) = (query::get(&pairs, "source"), query::get(&pairs, "target")) else {
        return Err(Problem::bad_request("give both `source=BRANCH` and `target=BRANCH`"));
    };
    let request = MergeRequest { source: source.to_owned(), target: target.to_owned() };
    let forge_said = ForgeSaid::read(&pairs)?;
    let now = app.inner.clock.now();
    let permission = hosted
        .handle
        .read(|d| {
            let now = now.max(d.instance().latest_instant());
            match &forge_said {
                Some(said) => d.instance().may_with(&request, &said.evidence(d.roster()), now),
                None => d.instance().may(&request, now),
            }
        })
        .await;
    let mut body = json!({
        "source": source, "target": target, "allowed": permission.allowed,
        "window": permission.window, "reason": permission.reason, "until": permission.until,
    });
    if forge_said.is_some() {
        body["unmet"] = json!(permission.unmet);
    }
    Ok(json_body(body).into_response())
}

/// What a merge bot read on the forge, from `may`'s query: `approvals=LOGIN,…` (the logins
/// whose latest review approves), `checks=NAME:STATE,…` (`passed`, `pending`, `failed`,
/// `missing`) and `forge=github|gitlab` (whose logins those are; `github` by default).
struct ForgeSaid {
    forge: kars_workflow::driver::Forge,
    approvers: Vec<String>,
    checks: std::collections::BTreeMap<String, kars_workflow::CheckState>,
}

impl ForgeSaid {
    /// `None` when the query gives neither approvals nor checks: windows alone decide.
    fn read(pairs: &[(String, String)]) -> Result<Option<Self>, Problem> {
        use kars_workflow::CheckState;
        let (approvals, checks) = (query::get(pairs, "approvals"), query::get(pairs, "checks"));
        if approvals.is_none() && checks.is_none() {
            return Ok(None);
        }
        let forge = match query::get(pairs, "forge").unwrap_or("github") {
            "github" => kars_workflow::driver::Forge::GitHub,
            "gitlab" => kars_workflow::driver::Forge::GitLab,
            other => return Err(Problem::bad_request(format!("`forge={other}`: give `github` or `gitlab`"))),
        };
        let list = |text: Option<&str>| -> Vec<String> {
            text.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };
        let mut states = std::collections::BTreeMap::new();
        for item in list(checks) {
            let state = match item.rsplit_once(':') {
                Some((name, "passed")) if !name.is_empty() => (name, CheckState::Passed),
                Some((name, "pending")) if !name.is_empty() => (name, CheckState::Pending),
                Some((name, "failed")) if !name.is_empty() => (name, CheckState::Failed),
                Some((name, "missing")) if !name.is_empty() => (name, CheckState::Missing),
                _ => {
                    return Err(Problem::bad_request(format!(
                        "`{item}` in `checks` is not `NAME:STATE`\nhelp: a state is `passed`, `pending`, `failed` or `missing` (`checks=ci:passed,lint:pending`)"
                    )));
                }
            };
            states.insert(state.0.to_owned(), state.1);
        }
        Ok(Some(Self { forge, approvers: list(approvals), checks: states }))
    }

    /// The evidence, each approver resolved to the roster person who carries that login (a
    /// login nobody carries approves without roles).
    fn evidence(&self, roster: &kars_workflow::driver::Roster) -> kars_workflow::MergeEvidence {
        let approvals = self
            .approvers
            .iter()
            .map(|login| {
                roster.reviewer(self.forge, login).unwrap_or_else(|| kars_workflow::Actor::new(login.as_str(), vec![]))
            })
            .collect();
        kars_workflow::MergeEvidence { approvals, checks: self.checks.clone() }
    }
}
