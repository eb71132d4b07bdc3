//! The page: plain HTML and a little JavaScript (no build step), mermaid served by kars itself.
//!
//! Signing in opens a session (an HttpOnly, SameSite=Strict cookie): with an API token posted
//! to `/ui/signin`, or, behind the trusted proxy, from its identity headers on the first visit.
//! Every form carries the session's CSRF token; a post without it is refused (403) before
//! anything is read. The instance page draws the workflow with the instance's overlay, shows
//! what it waits for and who can act, offers buttons only for what the signed-in person may do
//! now, and reloads its panel when the server says the instance changed (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use kars_workflow::driver::{Clock as _, SystemClock};
use serde_json::Value;

use super::api::{self, ApiResult, Peer, Write};
use super::auth::{self, Principal, Session};
use super::problem::Problem;
use super::{App, ServeStore, query, status};

/// mermaid, pinned (11.17.2, MIT licence: `assets/mermaid-LICENSE`), served from
/// `/assets/mermaid.min.js`.
const MERMAID_JS: &[u8] = include_bytes!("../../assets/mermaid-11.17.2.min.js");
/// The page's script.
const PAGE_JS: &str = include_str!("page.js");
/// What the page may load: only from this server (mermaid styles its SVG inline).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// The page's routes that end (under the request timeout).
pub(crate) fn routes<S: ServeStore>() -> Router<App<S>> {
    Router::new()
        .route("/", get(index::<S>))
        .route("/ui/signin", post(signin::<S>))
        .route("/ui/signout", post(signout::<S>))
        .route("/ui/instances/{id}", get(instance_page::<S>))
        .route("/ui/instances/{id}/panel", get(panel::<S>))
        .route("/ui/instances/{id}/act", post(act::<S>))
        .route("/assets/mermaid.min.js", get(mermaid_js))
        .route("/assets/page.js", get(page_js))
}

/// The live-update stream, which stays open (no request timeout).
pub(crate) fn live_routes<S: ServeStore>() -> Router<App<S>> {
    Router::new().route("/ui/instances/{id}/events", get(events::<S>))
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn html(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn shell(title: &str, session: Option<&Session>, main: &str) -> String {
    let who = session.map_or_else(String::new, |s| {
        format!(
            "<form method=\"post\" action=\"/ui/signout\" class=\"who\">signed in as <b id=\"me\">{}</b> <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form>",
            esc(s.principal.name()),
            esc(&s.csrf)
        )
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"icon\" href=\"data:,\">\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}} .who{{float:right}} \
         table{{border-collapse:collapse}} td,th{{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}} \
         #graph svg{{max-width:100%;height:auto}} .refused{{color:#a00}} .ok{{color:#070}} #error{{color:#a00}}</style>\
         </head><body>{who}<h1>{}</h1>{main}</body></html>\n",
        esc(title),
        esc(title)
    )
}

/// The session of the request; behind the trusted proxy, one is opened from its headers, and a
/// session of someone else than the proxy now names (a sign-out, another user in the same
/// browser) is closed first.
fn session_of<S: ServeStore>(app: &App<S>, headers: &HeaderMap, peer: Peer) -> (Option<Session>, Option<String>) {
    // Sessions last real hours whatever clock the instances run on (a rehearsal's jumps).
    let now = SystemClock.now();
    let proxied =
        headers.contains_key(&app.inner.settings.proxy_header) && !headers.contains_key(header::AUTHORIZATION);
    let vouched = if proxied { api::caller(app, headers, peer).ok() } else { None };
    match (app.inner.sessions.find(headers, now), vouched) {
        (Some((id, _)), Some(principal)) if !app.inner.sessions.held_by(&id, &principal) => {
            app.inner.sessions.close(&id);
            open_session(app, principal, headers, now)
        }
        (Some((_, session)), _) => (Some(session), None),
        (None, Some(principal)) => open_session(app, principal, headers, now),
        (None, None) => (None, None),
    }
}

fn open_session<S: ServeStore>(
    app: &App<S>,
    principal: auth::Principal,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> (Option<Session>, Option<String>) {
    match app.inner.sessions.open(principal, now) {
        Ok((id, session)) => (Some(session), Some(auth::session_cookie(&id, headers))),
        Err(_) => (None, None),
    }
}

fn with_cookie(mut response: Response, cookie: Option<String>) -> Response {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn signin_page(message: &str) -> Response {
    let main = format!(
        "<p>{}</p><form method=\"post\" action=\"/ui/signin\"><label>API token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label> <button id=\"signin\">Sign in</button></form>",
        esc(message)
    );
    html(shell("kars", None, &main))
}

async fn index<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let (session, cookie) = session_of(&app, &headers, peer);
    let Some(session) = session else {
        return signin_page(
            "Sign in with your API token (`kars serve new-token` makes one; its hash goes in the config).",
        );
    };
    let hosted = match api::every_instance(&app).await {
        Ok(hosted) => hosted,
        Err(problem) => return problem.into_response(),
    };
    let mut rows = String::new();
    for h in hosted {
        let s = api::status_json(&app, &h).await;
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let id = text(&s["id"]);
        rows.push_str(&format!(
            "<tr><td><a href=\"/ui/instances/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
            esc(&id),
            esc(&text(&s["workflow"])),
            esc(&text(&s["release"])),
            esc(&text(&s["node"])),
            esc(&text(&s["waiting"]["text"]))
        ));
    }
    let main = format!(
        "<table id=\"instances\"><tr><th>instance</th><th>workflow</th><th>release</th><th>at</th><th>waiting</th></tr>{rows}</table>"
    );
    with_cookie(html(shell("Instances", Some(&session), &main)), cookie)
}

async fn signin<S: ServeStore>(State(app): State<App<S>>, headers: HeaderMap, body: Bytes) -> Response {
    // Login CSRF: a page elsewhere must not sign this browser in as its own author.
    if let Err(problem) = same_origin(&headers) {
        return problem.into_response();
    }
    let pairs = query::pairs(&String::from_utf8_lossy(&body));
    let token = query::get(&pairs, "token").unwrap_or_default();
    let Some(person) = app.inner.settings.tokens.get(&auth::hash_token(token)) else {
        let mut r = signin_page("That token is not one this server knows.");
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    };
    match app.inner.sessions.open(Principal::Person(person.to_string()), SystemClock.now()) {
        Ok((id, _)) => {
            let r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            with_cookie(r, Some(auth::session_cookie(&id, &headers)))
        }
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// A form post from this service's own pages: browsers say where a request comes from
/// (`Sec-Fetch-Site`, else `Origin`); a post from another site is refused. A client that sends
/// neither (a script, an old browser) is judged by the session and the CSRF token alone.
fn same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross = match (text("sec-fetch-site"), text("origin")) {
        (Some(site), _) => !matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            let host = origin.split_once("://").map(|(_, rest)| rest);
            host.is_none() || host != text("host")
        }
        (None, None) => false,
    };
    if cross {
        return Err(Problem::forbidden(
            "csrf",
            "a form posted from another site is refused: use this service's own page",
        ));
    }
    Ok(())
}

/// A page post whose CSRF token matched: the session's id, the session, the form's pairs.
type Checked = (String, Session, Vec<(String, String)>);

/// The session and the form of a page post whose CSRF token matches; else 403.
fn checked_post<S: ServeStore>(app: &App<S>, headers: &HeaderMap, body: &[u8]) -> Result<Checked, Problem> {
    same_origin(headers)?;
    let Some((id, session)) = app.inner.sessions.find(headers, SystemClock.now()) else {
        return Err(Problem::forbidden("csrf", "no session: sign in on the page first"));
    };
    let pairs = query::pairs(&String::from_utf8_lossy(body));
    let given = query::get(&pairs, "csrf").unwrap_or_default();
    if !auth::same_secret(given, &session.csrf) {
        return Err(Problem::forbidden("csrf", "the form's CSRF token is missing or wrong: reload the page"));
    }
    Ok((id, session, pairs))
}

async fn signout<S: ServeStore>(State(app): State<App<S>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let (id, _, _) = checked_post(&app, &headers, &body)?;
    app.inner.sessions.close(&id);
    let r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    Ok(with_cookie(r, Some(auth::cleared_cookie(&headers))))
}

async fn instance_page<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let (session, cookie) = session_of(&app, &headers, peer);
    let Some(session) = session else { return Ok(signin_page("Sign in to see this instance.")) };
    let hosted = api::find(&app, &id).await?;
    let panel = panel_html(&app, &hosted, &session).await;
    let main = format!(
        "<p><a href=\"/\">all instances</a></p><div id=\"live\" data-id=\"{0}\" data-csrf=\"{1}\"></div>\
         <p id=\"error\" role=\"alert\"></p><div id=\"panel\">{panel}</div><div id=\"graph\"></div>\
         <script src=\"/assets/mermaid.min.js\"></script><script src=\"/assets/page.js\"></script>",
        esc(&id),
        esc(&session.csrf)
    );
    Ok(with_cookie(html(shell(&format!("Instance {id}"), Some(&session), &main)), cookie))
}

/// The part of the instance page that live updates replace.
async fn panel_html<S: ServeStore>(app: &App<S>, hosted: &super::hosted::Hosted<S>, session: &Session) -> String {
    let now = app.inner.clock.now();
    let principal = session.principal.clone();
    let (s, graph, me) = hosted
        .handle
        .read(|d| {
            let me = principal.actor(d.roster()).ok().map(|a| a.name().clone());
            (status::status(d, now), status::mermaid(d, &hosted.spec, now), me)
        })
        .await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut who = String::new();
    let mut mine = false;
    for v in s["who_can_act"].as_array().into_iter().flatten() {
        let person = text(&v["person"]);
        let allowed = v["allowed"].as_bool().unwrap_or(false);
        if allowed && me.as_deref() == Some(person.as_str()) {
            mine = true;
        }
        let why = if allowed { String::new() } else { format!(": {}", text(&v["refused"]["detail"])) };
        let class = if allowed { "ok" } else { "refused" };
        who.push_str(&format!("<li class=\"{class}\">{}{}</li>", esc(&person), esc(&why)));
    }
    let node = text(&s["node"]);
    let mut buttons = String::new();
    if mine {
        let outcomes: Vec<String> = s["outcomes"].as_array().into_iter().flatten().map(text).collect();
        let labels = if outcomes.is_empty() { vec![String::new()] } else { outcomes };
        for outcome in labels {
            let shown = if outcome.is_empty() { format!("Complete {node}") } else { format!("{node}: {outcome}") };
            buttons.push_str(&format!(
                "<form method=\"post\" action=\"/ui/instances/{id}/act\" class=\"act\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"node\" value=\"{n}\">\
                 <input type=\"hidden\" name=\"outcome\" value=\"{o}\"><input type=\"hidden\" name=\"version\" value=\"{v}\">\
                 <button data-node=\"{n}\" data-outcome=\"{o}\">{label}</button></form>",
                id = esc(&text(&s["id"])),
                csrf = esc(&session.csrf),
                n = esc(&node),
                o = esc(&outcome),
                v = s["version"],
                label = esc(&shown)
            ));
        }
    }
    let next = s["next_timer_local"]
        .as_str()
        .map(|t| format!("<p>next timer: <span id=\"next\">{}</span></p>", esc(t)))
        .unwrap_or_default();
    format!(
        "<p>release <b>{}</b>, version <span id=\"version\">{}</span></p>\
         <p>at <b id=\"node\">{}</b> {}</p><p id=\"waiting\">{}</p>{next}\
         <h2>Who can act</h2><ul id=\"who\">{who}</ul><div id=\"actions\">{buttons}</div>\
         <pre id=\"graph-src\" hidden>{}</pre>",
        esc(&text(&s["release"])),
        s["version"],
        esc(&node),
        esc(&text(&s["label"])),
        esc(&text(&s["waiting"]["text"])),
        esc(&graph)
    )
}

async fn panel<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let (Some(session), _) = session_of(&app, &headers, peer) else {
        return Err(Problem::unauthenticated("no session: sign in on the page".to_owned()));
    };
    let hosted = api::find(&app, &id).await?;
    Ok(html(panel_html(&app, &hosted, &session).await))
}

async fn act<S: ServeStore>(
    State(app): State<App<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let (_, session, pairs) = checked_post(&app, &headers, &body)?;
    let hosted = api::find(&app, &id).await?;
    let node = query::get(&pairs, "node").unwrap_or_default().to_owned();
    let outcome = query::get(&pairs, "outcome").filter(|o| !o.is_empty()).map(str::to_owned);
    let expected = match query::get(&pairs, "version").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| Problem::bad_request(format!("`version={v}` is not a version")))?),
    };
    api::write(&app, &hosted, session.principal, Write::Act, &node, outcome, expected).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, format!("/ui/instances/{id}"))]).into_response())
}

async fn events<S: ServeStore>(
    State(app): State<App<S>>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let (Some(_), _) = session_of(&app, &headers, peer) else {
        return Err(Problem::unauthenticated("no session: sign in on the page".to_owned()));
    };
    let hosted = api::find(&app, &id).await?;
    let version = hosted.handle.read(|d| d.version()).await;
    let changed = hosted.changed.subscribe();
    let closing = app.inner.closing.subscribe();
    let state = (hosted, changed, closing, version);
    let stream = futures_util::stream::unfold(state, |(hosted, mut changed, mut closing, last)| async move {
        loop {
            // A write through this server wakes the stream at once; a timer the loop ran (a
            // gate opening) is seen within half a second.
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = closing.wait_for(|c| *c) => return None,
            }
            let now = hosted.handle.read(|d| d.version()).await;
            if now != last {
                let event = Event::default().event("changed").data(now.to_string());
                return Some((Ok(event), (hosted, changed, closing, now)));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn mermaid_js() -> Response {
    let headers =
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")];
    (headers, MERMAID_JS).into_response()
}

async fn page_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PAGE_JS).into_response()
}
