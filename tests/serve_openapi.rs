//! The checked-in `openapi.json` is the document the code generates (feature `serve`): run
//! with `KARS_UPDATE_OPENAPI=1` to rewrite it after changing a route, and review the diff.
#![cfg(feature = "serve")]

mod serve_support;

use serve_support::{TestServer, Who, token_settings};

#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = format!("{:#}\n", kars::serve::openapi::document());
    if std::env::var_os("KARS_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi.json is stale: run `KARS_UPDATE_OPENAPI=1 cargo test --features serve --test serve_openapi` and review the diff"
    );
}

/// Every operation of the document is a route the server answers (not 404 for the path, not
/// 405 for the method), and the server serves the document itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served() {
    let server = TestServer::start(token_settings()).await;
    server.start_instance("kars").await;
    for route in kars::serve::openapi::ROUTES {
        let path = route.path.replace("{id}", "kars").replace("{sender}", "ci");
        let reply = match route.method {
            "get" => server.get(Who::Token("carol"), &path).await,
            _ => server.post(Who::Token("carol"), &path, &serde_json::json!({})).await,
        };
        assert_ne!(reply.status, 405, "{} {path}", route.method);
        let unknown_path = reply.status == 404 && reply.header("content-type") != Some("application/problem+json");
        assert!(!unknown_path, "{} {path} is not routed", route.method);
    }
    let served = server.get(Who::Nobody, "/openapi.json").await.json();
    assert_eq!(served, kars::serve::openapi::document());
    server.stop().await;
}
