//! `kars serve`'s page without a browser (feature `serve`): behind the trusted proxy the first
//! visit opens an HttpOnly, SameSite=Strict session; a form post needs the session's CSRF
//! token, and a post without it, with a wrong one, or without the cookie gets 403 and writes
//! nothing. The browser test (`tests/serve_browser.rs`) does the same through Chromium.
#![cfg(feature = "serve")]

mod serve_support;

use serve_support::{TestServer, request, token_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_sessions_and_csrf_protect_the_page_forms() {
    let mut settings = token_settings();
    settings.proxy_peers = vec!["127.0.0.1".parse().unwrap()];
    let server = TestServer::start(settings).await;
    server.start_instance("kars").await;

    // Erin arrives through the proxy: a session cookie, and her button for B.
    let page = request(server.addr, "GET", "/ui/instances/kars", &[("X-Forwarded-User", "erin".to_owned())], b"").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = page.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert!(page.body.contains("data-node=\"B\""), "{}", page.body);
    let csrf = page.body.split("data-csrf=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    assert_eq!(csrf.len(), 64);
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));

    let post = |cookie: Option<String>, form: String| {
        let server = &server;
        async move {
            let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded".to_owned())];
            if let Some(cookie) = cookie {
                headers.push(("Cookie", cookie));
            }
            request(server.addr, "POST", "/ui/instances/kars/act", &headers, form.as_bytes()).await
        }
    };
    let v = server.journal_version("kars");
    for (cookie, form) in [
        (Some(session.clone()), "node=B".to_owned()),
        (Some(session.clone()), format!("node=B&csrf={}", "0".repeat(64))),
        (None, format!("node=B&csrf={csrf}")),
        (Some("kars_session=forged".to_owned()), format!("node=B&csrf={csrf}")),
    ] {
        let reply = post(cookie, form).await;
        assert_eq!((reply.status, reply.problem()), (403, "csrf".to_owned()), "{}", reply.body);
        assert_eq!(server.journal_version("kars"), v, "a forged post wrote to the journal");
    }
    // With the token, the form acts as erin (not as anyone the form names).
    let reply = post(Some(session.clone()), format!("node=B&csrf={csrf}&actor=frank")).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(server.status("kars").await["node"], "C");
    let history = server.get(serve_support::Who::Token("carol"), "/api/instances/kars/history").await.json();
    let last = &history["entries"].as_array().unwrap().last().unwrap()["entry"]["input"]["input"]["event"]["complete"];
    assert_eq!(last["actor"]["name"], "erin", "{history}");
    // Frank's button is his; erin's page offers her nothing at C.
    let page = request(server.addr, "GET", "/ui/instances/kars/panel", &[("Cookie", session.clone())], b"").await;
    assert!(!page.body.contains("data-node="), "{}", page.body);
    // The proxy now names frank in the same browser: erin's session ends, frank's begins.
    let switched = [("Cookie", session.clone()), ("X-Forwarded-User", "frank".to_owned())];
    let page = request(server.addr, "GET", "/ui/instances/kars", &switched, b"").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let renewed = page.header("set-cookie").expect("a new session for frank").to_owned();
    assert_ne!(renewed.split(';').next().unwrap(), session, "a new session id");
    assert!(page.body.contains("data-node=\"C\""), "frank's button for C: {}", page.body);
    let old = request(server.addr, "GET", "/ui/instances/kars/panel", &[("Cookie", session)], b"").await;
    assert_eq!(old.status, 401, "erin's old session is closed: {}", old.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let server = TestServer::start(token_settings()).await;
    let form = format!("token={}", serve_support::token("erin"));
    let signin = |extra: Vec<(&'static str, String)>| {
        let (server, form) = (&server, form.clone());
        async move {
            let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded".to_owned())];
            headers.extend(extra);
            request(server.addr, "POST", "/ui/signin", &headers, form.as_bytes()).await
        }
    };
    // An attacker's page signing the victim's browser in as the attacker (login CSRF).
    for extra in [
        vec![("Sec-Fetch-Site", "cross-site".to_owned())],
        vec![("Sec-Fetch-Site", "same-site".to_owned())],
        vec![("Origin", "https://evil.example".to_owned())],
        vec![("Origin", "null".to_owned())],
    ] {
        let reply = signin(extra.clone()).await;
        assert_eq!((reply.status, reply.problem()), (403, "csrf".to_owned()), "{extra:?}: {}", reply.body);
        assert!(reply.header("set-cookie").is_none(), "{extra:?}");
    }
    // The service's own page, and a client that says nothing of where it posts from.
    let origin = format!("http://{}", server.addr);
    for extra in [vec![("Sec-Fetch-Site", "same-origin".to_owned())], vec![("Origin", origin)], vec![]] {
        let reply = signin(extra.clone()).await;
        assert_eq!(reply.status, 303, "{extra:?}: {}", reply.body);
        assert!(reply.header("set-cookie").is_some_and(|c| c.starts_with("kars_session=")), "{extra:?}");
    }
    server.stop().await;
}
