//! The OpenAPI 3 document of the JSON API, built from the route table [`ROUTES`] (the same
//! paths the router serves; `tests/serve_openapi.rs` checks the checked-in `openapi.json`
//! against [`document`] and that every route answers).

use serde_json::{Map, Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, metrics, this document).
    Public,
    /// A bearer token or the trusted proxy's headers.
    Person,
    /// A signed webhook.
    Signed,
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get` or `post`.
    pub method: &'static str,
    /// The path, with `{id}`-style parameters.
    pub path: &'static str,
    /// The operation id.
    pub id: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The request body's schema name, if any.
    pub body: Option<&'static str>,
    /// Query parameters: name, whether required, description.
    pub query: &'static [(&'static str, bool, &'static str)],
    /// The success status and the response schema name (or a media type for non-JSON).
    pub ok: (u16, &'static str),
    /// The problem statuses it may answer with.
    pub problems: &'static [u16],
}

const INSTANCE_PROBLEMS: &[u16] = &[401, 404];
const WRITE_PROBLEMS: &[u16] = &[400, 401, 403, 404, 409, 413, 422];

/// The API's operations.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        id: "health",
        summary: "Liveness: the process answers.",
        access: Access::Public,
        body: None,
        query: &[],
        ok: (200, "Health"),
        problems: &[],
    },
    Route {
        method: "get",
        path: "/readyz",
        id: "ready",
        summary: "Readiness: every instance is loaded and the server is not stopping.",
        access: Access::Public,
        body: None,
        query: &[],
        ok: (200, "Health"),
        problems: &[503],
    },
    Route {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "Prometheus metrics (text exposition format).",
        access: Access::Public,
        body: None,
        query: &[],
        ok: (200, "text/plain"),
        problems: &[],
    },
    Route {
        method: "get",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document.",
        access: Access::Public,
        body: None,
        query: &[],
        ok: (200, "Object"),
        problems: &[],
    },
    Route {
        method: "get",
        path: "/api/instances",
        id: "listInstances",
        summary: "Every hosted instance with where it stands.",
        access: Access::Person,
        body: None,
        query: &[],
        ok: (200, "InstanceList"),
        problems: &[401],
    },
    Route {
        method: "post",
        path: "/api/instances",
        id: "startInstance",
        summary: "Starts an instance of a served workflow (a role the spec's `team_managed_by` names).",
        access: Access::Person,
        body: Some("StartRequest"),
        query: &[],
        ok: (201, "Status"),
        problems: &[400, 401, 403, 404, 409],
    },
    Route {
        method: "get",
        path: "/api/instances/{id}",
        id: "status",
        summary: "Where the instance is, what it waits for and why, who can act, the next timer, this week's path. `ETag` is the version.",
        access: Access::Person,
        body: None,
        query: &[],
        ok: (200, "Status"),
        problems: INSTANCE_PROBLEMS,
    },
    Route {
        method: "post",
        path: "/api/instances/{id}/act",
        id: "act",
        summary: "The caller acts on a node: completes a task, takes a decision, or reports an action's result. Expected version in `If-Match` or `expected_version`.",
        access: Access::Person,
        body: Some("ActRequest"),
        query: &[],
        ok: (200, "Status"),
        problems: WRITE_PROBLEMS,
    },
    Route {
        method: "post",
        path: "/api/instances/{id}/report",
        id: "report",
        summary: "The caller reports a waiting action's result (`succeeded` or `failed`).",
        access: Access::Person,
        body: Some("ActRequest"),
        query: &[],
        ok: (200, "Status"),
        problems: WRITE_PROBLEMS,
    },
    Route {
        method: "get",
        path: "/api/instances/{id}/history",
        id: "history",
        summary: "The journal's entries, paged by version.",
        access: Access::Person,
        body: None,
        query: &[
            ("after", false, "the version to start after (default 0)"),
            ("limit", false, "how many entries, 1 to 1000 (default 100)"),
        ],
        ok: (200, "HistoryPage"),
        problems: &[400, 401, 404],
    },
    Route {
        method: "get",
        path: "/api/instances/{id}/mermaid",
        id: "mermaid",
        summary: "The workflow as a mermaid flowchart with the instance drawn on it.",
        access: Access::Person,
        body: None,
        query: &[],
        ok: (200, "text/vnd.mermaid"),
        problems: INSTANCE_PROBLEMS,
    },
    Route {
        method: "get",
        path: "/api/instances/{id}/may",
        id: "may",
        summary: "May a merge from `source` into `target` happen now? For merge bots and branch protection. With what the forge reports (`approvals`, `checks`), also what the merge `requires:`, each unmet requirement listed in `unmet`.",
        access: Access::Person,
        body: None,
        query: &[
            ("source", true, "the source branch"),
            ("target", true, "the target branch"),
            (
                "approvals",
                false,
                "the forge logins whose latest review approves, comma-separated: with `checks`, the merge's `requires:` is judged too",
            ),
            (
                "checks",
                false,
                "the named checks on the head, `NAME:STATE` comma-separated (`passed`, `pending`, `failed`, `missing`)",
            ),
            ("forge", false, "whose logins `approvals` lists: `github` (the default) or `gitlab`"),
        ],
        ok: (200, "Permission"),
        problems: &[400, 401, 404],
    },
    Route {
        method: "post",
        path: "/hooks/{sender}",
        id: "webhook",
        summary: "A signed report of an action's result from a CI/CD system: `X-Kars-Timestamp` (Unix seconds) and `X-Kars-Signature: sha256=HMAC(secret, TIMESTAMP.BODY)`; or, for a sender with `scheme: github`, a GitHub `workflow_run` event signed with `X-Hub-Signature-256: sha256=HMAC(secret, BODY)`, whose completed run (titled with a deploy's idempotency key) reports that deploy; or, for a sender with `scheme: gitlab`, a GitLab `Pipeline Hook` event with the secret in `X-Gitlab-Token`, whose finished pipeline (its `KARS_KEY` variable the deploy's idempotency key) reports that deploy. Forge events with nothing to report answer `{\"ignored\": WHY}`.",
        access: Access::Signed,
        body: Some("WebhookReport"),
        query: &[],
        ok: (200, "Status"),
        problems: &[400, 401, 403, 404, 409, 413, 422],
    },
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn content(name: &str) -> Value {
    if name.contains('/') {
        json!({ name: { "schema": { "type": "string" } } })
    } else {
        json!({ "application/json": { "schema": schema_ref(name) } })
    }
}

fn operation(route: &Route) -> Value {
    let mut params: Vec<Value> = Vec::new();
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
    }
    for (name, required, description) in route.query {
        params.push(json!({ "name": name, "in": "query", "required": required, "description": description, "schema": { "type": "string" } }));
    }
    let mut responses = Map::new();
    responses.insert(route.ok.0.to_string(), json!({ "description": "success", "content": content(route.ok.1) }));
    for status in route.problems {
        responses.insert(
            status.to_string(),
            json!({ "description": "a problem (RFC 9457)", "content": { "application/problem+json": { "schema": schema_ref("Problem") } } }),
        );
    }
    let mut op = json!({ "operationId": route.id, "summary": route.summary, "responses": responses });
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(body) = route.body {
        op["requestBody"] = json!({ "required": true, "content": content(body) });
    }
    match route.access {
        Access::Public => op["security"] = json!([]),
        Access::Person => op["security"] = json!([{ "token": [] }, { "proxy": [] }]),
        Access::Signed => op["security"] = json!([{ "webhook": [] }]),
    }
    op
}

fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let version = json!({ "type": "integer", "minimum": 0 });
    json!({
        "Problem": { "type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": { "type": "string", "description": "urn:kars:problem:KIND (role, separation-of-duties, gate-closed, window-forbids, unknown-outcome, not-awaiting, version-conflict, unauthenticated, bad-signature, bad-token, stale-timestamp, replayed, …)" },
            "title": string, "status": { "type": "integer" }, "detail": string,
            "reason": { "type": "object", "description": "the engine's refusal as data (EngineError)" },
            "current_version": version } },
        "Health": { "type": "object", "properties": { "status": string } },
        "Object": { "type": "object" },
        "StartRequest": { "type": "object", "required": ["workflow"], "additionalProperties": false, "properties": {
            "workflow": string, "id": string } },
        "ActRequest": { "type": "object", "required": ["node"], "additionalProperties": false, "properties": {
            "node": string, "outcome": string, "expected_version": version } },
        "WebhookReport": { "type": "object", "required": ["instance", "node", "outcome"], "additionalProperties": false, "properties": {
            "instance": string, "node": string, "outcome": { "type": "string", "enum": ["succeeded", "failed"] } } },
        "Status": { "type": "object", "properties": {
            "id": string, "workflow": string, "version": version, "release": string, "node": string, "label": string,
            "kind": string, "waiting": { "type": "object" }, "outcomes": { "type": "array", "items": string },
            "who_can_act": { "type": "array", "items": { "type": "object", "properties": {
                "person": string, "node": string, "allowed": { "type": "boolean" }, "refused": { "type": "object" } } } },
            "deadline": { "type": "object" }, "paused_by": string, "next_timer": { "type": "string", "format": "date-time" }, "next_timer_local": string,
            "path": { "type": "array", "items": string }, "pending_effects": { "type": "integer" },
            "branches": { "type": "array", "description": "only while parallel branches run: each branch after the first (by node); `node`, `waiting` and the rest above are the first branch's",
                "items": { "type": "object", "properties": {
                    "node": string, "label": string, "kind": string, "waiting": { "type": "object" },
                    "outcomes": { "type": "array", "items": string }, "deadline": { "type": "object" } } } } } },
        "InstanceList": { "type": "object", "properties": { "instances": { "type": "array", "items": { "type": "object" } } } },
        "HistoryPage": { "type": "object", "properties": {
            "version": version, "next_after": version,
            "entries": { "type": "array", "items": { "type": "object", "properties": { "version": version, "entry": { "type": "object" } } } } } },
        "Permission": { "type": "object", "properties": {
            "source": string, "target": string, "allowed": { "type": "boolean" }, "window": string, "reason": string,
            "until": { "type": "string", "format": "date-time" },
            "unmet": { "type": "array", "items": { "type": "object" } } } },
    })
}

/// The OpenAPI 3.1 document.
#[must_use]
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kars serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API of `kars serve`: workflow instances, acting as a roster person, signed webhooks. Errors are RFC 9457 problem details carrying the engine's reason.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": "a per-person API token; the server stores only its SHA-256" },
                "proxy": { "type": "apiKey", "in": "header", "name": "X-Forwarded-User", "description": "set by the trusted single-sign-on proxy (accepted only from its configured addresses); the config's `proxy.header` may name another header, and then only that one is read" },
                "webhook": { "type": "apiKey", "in": "header", "name": "X-Kars-Signature", "description": "sha256=HEX: HMAC-SHA256 with the sender's secret over `TIMESTAMP.BODY`, with X-Kars-Timestamp" },
            },
        },
    })
}
