//! Node rules: which fields each kind takes or needs, references inside nodes, actions,
//! `decided_by`, retries, escalations, labels and styles.

use std::collections::{BTreeSet, HashMap};

use super::{Cx, node_path};
use crate::diagnostic::{Code, Diagnostic, Location, Path};
use crate::id::NodeId;
use crate::spec::{Action, DecidedBy, Escalation, Node, NodeKind, Then};
use crate::suggest;

/// The results an action that waits for its host can record.
pub(crate) const ACTION_OUTCOMES: &[&str] = &["succeeded", "failed"];

pub(super) fn check(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    let back_edge_sources: BTreeSet<&str> = spec
        .edges
        .iter()
        .filter(|e| spec.nodes.get(&e.to).is_some_and(|n| n.kind == NodeKind::Start))
        .map(|e| e.from.as_str())
        .collect();
    let mut labels: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &spec.edges {
        if let Some(label) = e.label.as_deref() {
            labels.entry(e.from.as_str()).or_default().push(label);
        }
    }
    for (id, node) in &spec.nodes {
        let path = node_path(id);
        cx.non_empty(&node.label, format_args!("the label of node `{id}`"), || path.clone().key("label"));
        style(cx, node, &path);
        kind_fields(cx, id, node, &path, back_edge_sources.contains(id.as_str()));
        for (i, role) in node.roles.iter().enumerate() {
            cx.role_ref(role.as_str(), || path.clone().key("roles").index(i));
        }
        for (i, role) in node.reported_by.iter().enumerate() {
            cx.role_ref(role.as_str(), || path.clone().key("reported_by").index(i));
        }
        for (i, outcome) in node.outcomes.iter().enumerate() {
            cx.non_empty(outcome, "an outcome", || path.clone().key("outcomes").index(i));
        }
        for (i, other) in node.distinct_from.iter().enumerate() {
            distinct_from(cx, id, other, path.clone().key("distinct_from").index(i));
        }
        if let Some(action) = &node.action {
            self::action(cx, action, &path.clone().key("action"));
        }
        if let Some(decided_by) = &node.decided_by {
            let labels = labels.get(id.as_str()).map_or(&[][..], Vec::as_slice);
            self::decided_by(cx, id, decided_by, labels, &path.clone().key("decided_by"));
        }
        if let Some(deadline) = &node.deadline {
            escalation(cx, &deadline.escalate, &path.clone().key("deadline").key("escalate"));
        }
        if let Some(retry) = &node.retry {
            if retry.max_attempts < 1 {
                cx.push(
                    Diagnostic::error(Code::RetryBound, format!("node `{id}` may be entered at most 0 times"))
                        .at_path(path.clone().key("retry").key("max_attempts"))
                        .label("must be 1 or more")
                        .help("`max_attempts` counts every entry, the first included; write 1 or more"),
                );
            }
            escalation(cx, &retry.on_exhausted, &path.clone().key("retry").key("on_exhausted"));
        }
        if let Some(outcome) = &node.outcome {
            cx.non_empty(outcome, "the outcome", || path.clone().key("outcome"));
        }
    }
}

fn style(cx: &mut Cx<'_>, node: &Node, path: &Path) {
    style_map(cx, &node.style, path);
}

/// Reports style keys and values mermaid cannot take; `path` is the item holding `style`.
pub(super) fn style_map(cx: &mut Cx<'_>, style: &std::collections::BTreeMap<String, String>, path: &Path) {
    for (key, value) in style {
        let at = path.clone().key("style").key(key.as_str());
        let bad_key = key.is_empty() || key.chars().any(|c| matches!(c, ';' | ',' | ':') || c.is_whitespace());
        if bad_key {
            cx.push(
                Diagnostic::error(Code::Style, format!("style key `{key}` cannot be written in mermaid"))
                    .at_key(at.clone())
                    .help("a style key is a CSS property name such as `fill` or `stroke-width`: no `;`, `,`, `:` or spaces"),
            );
        }
        if value.trim().is_empty() || value.chars().any(|c| c == ';' || c == '\n' || c == '\r') {
            cx.push(
                Diagnostic::error(
                    Code::Style,
                    format!("style value `{}` cannot be written in mermaid", value.escape_debug()),
                )
                .at_path(at)
                .help("a style value is one CSS value such as `#c8e6c9`: not empty, no `;` and no line breaks"),
            );
        }
    }
}

/// Which fields the node's kind takes and needs.
fn kind_fields(cx: &mut Cx<'_>, id: &NodeId, node: &Node, path: &Path, back_edge_source: bool) {
    use NodeKind as K;
    let kind = node.kind;
    let kind_name = kind_name(kind);
    let not_allowed = |cx: &mut Cx<'_>, field: &str, present: bool, allowed: &[NodeKind], why: &str| {
        if present && !allowed.contains(&kind) {
            cx.push(
                Diagnostic::error(
                    Code::FieldNotAllowed,
                    format!("`{field}` is not allowed on {kind_name} node `{id}`"),
                )
                .at_key(path.clone().key(field))
                .help(why.to_owned()),
            );
        }
    };
    not_allowed(
        cx,
        "action",
        node.action.is_some(),
        &[K::Action, K::End],
        "only `action` and `end` nodes perform an action",
    );
    not_allowed(cx, "decided_by", node.decided_by.is_some(), &[K::Decision], "only `decision` nodes are decided");
    not_allowed(
        cx,
        "roles",
        !node.roles.is_empty(),
        &[K::Task, K::Decision],
        "only tasks and decisions are done by people",
    );
    not_allowed(cx, "outcomes", !node.outcomes.is_empty(), &[K::Task], "only tasks ask their actor for an outcome");
    let reported = !node.reported_by.is_empty();
    not_allowed(cx, "reported_by", reported, &[K::Action], "only actions that wait for a result have one to report");
    if reported && node.kind == K::Action && matches!(node.action, Some(Action::Notify(_))) {
        cx.push(
            Diagnostic::error(Code::FieldNotAllowed, format!("`reported_by` is not allowed on notify action `{id}`"))
                .at_key(path.clone().key("reported_by"))
                .help("a notification does not wait for a result, so nobody reports one"),
        );
    }
    not_allowed(cx, "distinct_from", !node.distinct_from.is_empty(), &[K::Task], "only tasks have an actor to compare");
    let timed = [K::End, K::Task, K::Action, K::Decision, K::Wait];
    let (gate_why, deadline_why, retry_why) = match kind {
        K::Parallel | K::Join => (
            "a fork or join passes on at once: put the gate on a `wait` before it",
            "a fork or join passes on at once: put the deadline on the work inside a branch",
            "a fork or join is entered with its branches: put the retry bound on a node of the loop inside a branch",
        ),
        _ => (
            "the start node begins the cycle and cannot wait",
            "the start node is left at once, it cannot be late",
            "a retry bound belongs on a node inside a loop",
        ),
    };
    not_allowed(cx, "gate", node.gate.is_some(), &timed, gate_why);
    not_allowed(cx, "deadline", node.deadline.is_some(), &timed, deadline_why);
    let loops = [K::Task, K::Action, K::Decision, K::Wait];
    not_allowed(cx, "retry", node.retry.is_some(), &loops, retry_why);
    not_allowed(cx, "join", node.join.is_some(), &[K::Join], "only a `join` node has a join rule (`all` or `first`)");

    let required = |cx: &mut Cx<'_>, field: &str, missing: bool, why: &str, help: &str| {
        if missing {
            cx.push(
                Diagnostic::error(Code::FieldRequired, format!("{kind_name} node `{id}` needs `{field}`"))
                    .at_key(path.clone())
                    .label(why.to_owned())
                    .help(help.to_owned()),
            );
        }
    };
    required(
        cx,
        "action",
        kind == K::Action && node.action.is_none(),
        "an action node performs an action",
        "add `action:`, for example `action: { deploy: { environment: production } }`",
    );
    required(
        cx,
        "roles",
        kind == K::Task && node.roles.is_empty(),
        "nobody could complete this task",
        "add `roles: [...]` with the roles that may complete it",
    );
    required(
        cx,
        "decided_by",
        kind == K::Decision && node.decided_by.is_none(),
        "nobody would take this decision",
        "add `decided_by: { role: ... }` or `decided_by: { outcome_of: NODE, map: {...} }`",
    );
    required(
        cx,
        "outcome",
        kind == K::End && node.outcome.is_none(),
        "the cycle ends here and records an outcome",
        "add `outcome:`, for example `outcome: released`",
    );
    required(
        cx,
        "outcome",
        kind != K::End && back_edge_source && node.outcome.is_none(),
        "its edge back to the start ends the cycle, which records an outcome",
        "add `outcome:`, for example `outcome: released`",
    );
    if node.outcome.is_some() && kind != K::End && !back_edge_source {
        cx.push(
            Diagnostic::warning(Code::UnusedOutcome, format!("the `outcome` of node `{id}` is never used"))
                .at_key(path.clone().key("outcome"))
                .help("only `end` nodes and nodes with an edge back to the start end a cycle with their outcome"),
        );
    }
}

pub(crate) fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Start => "start",
        NodeKind::End => "end",
        NodeKind::Task => "task",
        NodeKind::Action => "action",
        NodeKind::Decision => "decision",
        NodeKind::Wait => "wait",
        NodeKind::Parallel => "parallel",
        NodeKind::Join => "join",
    }
}

fn distinct_from(cx: &mut Cx<'_>, id: &NodeId, other: &NodeId, path: Path) {
    let Some(target) = cx.spec.nodes.get(other) else {
        cx.node_ref(other, || path);
        return;
    };
    let by_actor = target.kind == NodeKind::Task
        || (target.kind == NodeKind::Decision && target.decided_by.as_ref().is_some_and(|d| d.role.is_some()));
    if other == id || !by_actor {
        let why = if other == id {
            "a task cannot be distinct from itself".to_owned()
        } else {
            format!("`{other}` is a {} node, which no actor completes", kind_name(target.kind))
        };
        cx.push(
            Diagnostic::error(Code::DistinctFrom, format!("task `{id}` cannot be distinct from `{other}`"))
                .at_path(path)
                .label(why)
                .help("name tasks or role decisions whose actor must differ from this one"),
        );
    }
}

fn action(cx: &mut Cx<'_>, action: &Action, path: &Path) {
    match action {
        Action::Notify(n) => {
            let at = path.clone().key("notify");
            if n.to.is_empty() {
                cx.push(
                    Diagnostic::error(Code::NoRecipients, "the notification has no recipients")
                        .at_path(at.clone().key("to"))
                        .help("add `{ channel: ... }` or `{ role: ... }` to `to`"),
                );
            }
            cx.recipients(&n.to, &at.clone().key("to"));
            cx.template(&n.message, at.key("message"));
        }
        Action::OpenPullRequest(pair) => {
            let at = path.clone().key("open_pull_request");
            cx.branch_ref(pair.from.as_str(), || at.clone().key("from"));
            cx.branch_ref(pair.to.as_str(), || at.key("to"));
        }
        Action::MergePullRequest(merge) => {
            let at = path.clone().key("merge_pull_request");
            cx.branch_ref(merge.from.as_str(), || at.clone().key("from"));
            cx.branch_ref(merge.to.as_str(), || at.clone().key("to"));
            for check in merge.requires.iter().flat_map(|r| &r.checks) {
                cx.non_empty(check, "a required check's name", || at.clone().key("requires").key("checks"));
            }
            for (i, role) in merge.requires.iter().flat_map(|r| &r.approved_by).enumerate() {
                cx.role_ref(role.as_str(), || at.clone().key("requires").key("approved_by").index(i));
            }
        }
        Action::Deploy(env) | Action::Rollback(env) => {
            let name = if matches!(action, Action::Deploy(_)) { "deploy" } else { "rollback" };
            cx.environment_ref(env.environment.as_str(), || path.clone().key(name).key("environment"));
        }
        Action::RunChecks(checks) => {
            let at = path.clone().key("run_checks");
            cx.non_empty(&checks.suite, "the check suite name", || at.clone().key("suite"));
            if let Some(env) = &checks.environment {
                cx.environment_ref(env.as_str(), || at.key("environment"));
            }
        }
    }
}

fn escalation(cx: &mut Cx<'_>, escalation: &Escalation, path: &Path) {
    cx.recipients(&escalation.notify, &path.clone().key("notify"));
    if let Some(message) = &escalation.message {
        cx.template(message, path.clone().key("message"));
    }
    match &escalation.then {
        Some(Then::Goto(node)) => cx.node_ref(node, || path.clone().key("then").key("goto")),
        Some(Then::End(outcome)) => cx.non_empty(outcome, "the outcome", || path.clone().key("then").key("end")),
        None => {}
    }
}

fn decided_by(cx: &mut Cx<'_>, id: &NodeId, by: &DecidedBy, labels: &[&str], path: &Path) {
    match (&by.role, &by.outcome_of) {
        (Some(_), Some(_)) | (None, None) => {
            cx.push(
                Diagnostic::error(Code::DecidedBy, format!("`decided_by` of `{id}` needs exactly one of `role` and `outcome_of`"))
                    .at_key(path.clone())
                    .help("write `{ role: qa }` for a person's choice, or `{ outcome_of: NODE, map: {...} }` for an automatic one"),
            );
        }
        (Some(role), None) => {
            cx.role_ref(role.as_str(), || path.clone().key("role"));
            if !by.map.is_empty() {
                cx.push(
                    Diagnostic::error(Code::DecidedBy, "`map` goes with `outcome_of`, not with `role`")
                        .at_key(path.clone().key("map"))
                        .help("an actor with the role picks a branch label directly; remove `map`"),
                );
            }
        }
        (None, Some(source)) => outcome_map(cx, id, source, by, labels, path),
    }
}

fn outcome_map(cx: &mut Cx<'_>, id: &NodeId, source: &NodeId, by: &DecidedBy, labels: &[&str], path: &Path) {
    let source_path = path.clone().key("outcome_of");
    let Some(node) = cx.spec.nodes.get(source) else {
        cx.node_ref(source, || source_path);
        return;
    };
    let outcomes: Vec<&str> = match (&node.kind, &node.action) {
        (NodeKind::Task, _) if !node.outcomes.is_empty() => node.outcomes.iter().map(String::as_str).collect(),
        (NodeKind::Action, Some(action)) if !matches!(action, Action::Notify(_)) => ACTION_OUTCOMES.to_vec(),
        _ => {
            let why = match node.kind {
                NodeKind::Task => format!("task `{source}` asks for no outcome; give it `outcomes: [...]`"),
                NodeKind::Action => format!("`{source}` only notifies, which does not wait for a result"),
                kind => format!("`{source}` is a {} node, which records no outcome", kind_name(kind)),
            };
            cx.push(
                Diagnostic::error(
                    Code::OutcomeOf,
                    format!("decision `{id}` cannot be decided by the outcome of `{source}`"),
                )
                .at_path(source_path)
                .label(why)
                .help("name an action that waits for a result, or a task with `outcomes`"),
            );
            return;
        }
    };
    if by.map.is_empty() {
        cx.push(
            Diagnostic::error(Code::DecidedBy, format!("`decided_by` of `{id}` has `outcome_of` but no `map`"))
                .at_key(path.clone())
                .help(format!(
                    "map each outcome of `{source}` to a branch label: {}",
                    suggest::list(outcomes.iter().copied())
                )),
        );
        return;
    }
    for (outcome, label) in &by.map {
        let at = path.clone().key("map").key(outcome.as_str());
        if !outcomes.contains(&outcome.as_str()) {
            cx.push(
                Diagnostic::error(Code::MapUnknownOutcome, format!("`{source}` never records the outcome `{outcome}`"))
                    .at_key(at.clone())
                    .help(
                        suggest::help(outcome, outcomes.iter().copied())
                            .unwrap_or_else(|| format!("its outcomes are {}", suggest::list(outcomes.iter().copied()))),
                    ),
            );
        }
        if !labels.contains(&label.as_str()) {
            cx.push(
                Diagnostic::error(Code::MapTarget, format!("`{label}` is not a branch label of decision `{id}`"))
                    .at_path(at)
                    .help(
                        suggest::help(label, labels.iter().copied()).unwrap_or_else(|| {
                            format!("its branch labels are {}", suggest::list(labels.iter().copied()))
                        }),
                    ),
            );
        }
    }
    for label in labels {
        if !by.map.values().any(|v| v == label) {
            cx.push(
                Diagnostic::error(
                    Code::MapMissingBranch,
                    format!("no outcome of `{source}` leads to branch `{label}` of `{id}`"),
                )
                .at_key(path.clone().key("map"))
                .with_label(branch_edge_location(cx, id, label), "this branch is never taken")
                .help(format!("map an outcome to `{label}`, or remove the branch")),
            );
        }
    }
}

fn branch_edge_location(cx: &Cx<'_>, id: &NodeId, label: &str) -> Location {
    let index = cx.spec.edges.iter().position(|e| &e.from == id && e.label.as_deref() == Some(label)).unwrap_or(0);
    Location::path(super::root().key("edges").index(index))
}
