//! Errors as RFC 9457 problem details (`application/problem+json`): a `type` URI per kind of
//! refusal, the engine's message as `detail`, and the engine's reason as typed data in
//! `reason` (the serialized [`EngineError`]), so a client branches on data, not on English.
//!
//! | status | when |
//! |---|---|
//! | 401 | no or unknown credentials, a bad webhook signature or token, a stale or replayed webhook |
//! | 403 | a role the caller lacks, separation of duties, not on the roster, a bad CSRF token |
//! | 404 | an unknown instance, workflow or node |
//! | 409 | a stale expected version (with `current_version`), a node not awaiting this |
//! | 413 | a body past the limit |
//! | 422 | a closed gate, a window (freeze, weekend) forbidding it, an unknown outcome |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kars_workflow::EngineError;
use kars_workflow::driver::DriverError;
use kars_workflow::journal::JournalError;
use serde::Serialize;

/// A problem details response (boxed: handlers return it in `Result`s).
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDoc>);

/// The problem details document.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemDoc {
    /// `urn:kars:problem:KIND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The engine's (or server's) message.
    pub detail: String,
    /// The engine's refusal as data, when the engine refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<serde_json::Value>,
    /// The instance's version now, for 409 responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl Problem {
    /// A problem of `kind` with `status`.
    #[must_use]
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDoc {
            kind: format!("urn:kars:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            reason: None,
            current_version: None,
        }))
    }

    /// The document.
    #[must_use]
    pub fn doc(&self) -> &ProblemDoc {
        &self.0
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The kind, without the `urn:kars:problem:` prefix (for metrics).
    #[must_use]
    pub fn short_kind(&self) -> &str {
        self.0.kind.strip_prefix("urn:kars:problem:").unwrap_or(&self.0.kind)
    }

    /// 401.
    #[must_use]
    pub fn unauthenticated(detail: String) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Not signed in", detail)
    }

    /// 403.
    #[must_use]
    pub fn forbidden(kind: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, kind, "Forbidden", detail)
    }

    /// 404.
    #[must_use]
    pub fn not_found(kind: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, "Not found", detail)
    }

    /// 400 for a request that does not parse.
    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// 409: the caller expected another version.
    #[must_use]
    pub fn version_conflict(expected: u64, current: u64) -> Self {
        let mut p = Self::new(
            StatusCode::CONFLICT,
            "version-conflict",
            "Version conflict",
            format!(
                "the request expected version {expected}, and the instance is at version {current}\nhelp: read the status again and decide with what it says now"
            ),
        );
        p.0.current_version = Some(current);
        p
    }

    /// 500, for failures the caller cannot fix.
    #[must_use]
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    /// The problem for an engine refusal.
    #[must_use]
    pub fn refused(error: &EngineError, current_version: u64) -> Self {
        let (status, kind, title) = match error {
            EngineError::Unauthorized { .. } => (StatusCode::FORBIDDEN, "role", "Role required"),
            EngineError::SeparationOfDuties { .. } => {
                (StatusCode::FORBIDDEN, "separation-of-duties", "Someone else must do this")
            }
            EngineError::GateNotOpen { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "gate-closed", "Gate closed"),
            EngineError::WindowForbids { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "window-forbids", "Window forbids"),
            EngineError::UnknownOutcome { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unknown-outcome", "Unknown outcome")
            }
            EngineError::NoReporter { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "no-reporter", "No reporter"),
            EngineError::UnknownNode { .. } => (StatusCode::NOT_FOUND, "unknown-node", "Unknown node"),
            EngineError::NotAwaiting { .. } => (StatusCode::CONFLICT, "not-awaiting", "Not awaiting this"),
            EngineError::StaleResult { .. } => (StatusCode::CONFLICT, "stale-result", "Stale result"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "engine", "Engine error"),
        };
        let mut p = Self::new(status, kind, title, error.to_string());
        p.0.reason = serde_json::to_value(error).ok();
        if status == StatusCode::CONFLICT {
            p.0.current_version = Some(current_version);
        }
        p
    }

    /// The problem for a driver error.
    #[must_use]
    pub fn driver(error: &DriverError, current_version: u64) -> Self {
        match error {
            DriverError::Refused(e) => Self::refused(e, current_version),
            DriverError::RosterLocked { .. } => Self::forbidden("role", error.to_string()),
            DriverError::Journal(JournalError::Conflict { .. }) => {
                let mut p = Self::new(StatusCode::CONFLICT, "journal-conflict", "Version conflict", error.to_string());
                p.0.current_version = Some(current_version);
                p
            }
            _ => Self::internal(error.to_string()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response.extensions_mut().insert(ProblemKind(self.short_kind().to_owned()));
        response
    }
}

/// The kind of a problem response, for the metrics layer.
#[derive(Debug, Clone)]
pub(crate) struct ProblemKind(pub String);
