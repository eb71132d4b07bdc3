//! The layers around every route: the peer's address, the body limit (as a problem document),
//! the request timeout, and the response counters of the metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::Peer;
use super::config::Limits;
use super::problem::{Problem, ProblemKind};
use super::{App, ServeStore};

/// Records the peer, refuses oversized bodies up front, counts responses, and turns axum's own
/// plain-text rejections into problems.
pub(crate) async fn observe<S: ServeStore>(State(app): State<App<S>>, mut request: Request, next: Next) -> Response {
    let peer =
        request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    request.extensions_mut().insert(Peer(peer));
    let limit = app.inner.settings.limits.body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let response = if declared.is_some_and(|n| n > limit) {
        too_large(limit).into_response()
    } else {
        let response = next.run(request).await;
        match response.status() {
            StatusCode::PAYLOAD_TOO_LARGE if response.extensions().get::<ProblemKind>().is_none() => {
                too_large(limit).into_response()
            }
            _ => response,
        }
    };
    let kind = response.extensions().get::<ProblemKind>().map(|k| k.0.as_str());
    app.inner.metrics.count(response.status().as_u16(), kind);
    response
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Body too large",
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Ends a request that takes longer than the limit with 503. A write already handed to the
/// journal still completes: read the status to see whether it did.
pub(crate) async fn timeout(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limits.request_timeout(), next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Timed out",
            format!(
                "the request took longer than {} s; if it was a write, read the status to see whether it was recorded",
                limits.request_seconds
            ),
        )
        .into_response(),
    }
}
