//! Checks that know the team (warnings): a task or decision nobody on the roster can take, a
//! `distinct_from` the roster cannot satisfy, and a merge that requires the approval of a role
//! no reviewer the forge knows holds. A spec without a `team:` is not judged: its host
//! supplies the people.

use std::collections::BTreeSet;

use super::{Cx, node_path};
use crate::diagnostic::{Code, Diagnostic};
use crate::id::RoleId;
use crate::spec::{Action, NodeKind, Spec};

/// The people on the team who hold one of `roles`.
fn holders<'a>(spec: &'a Spec, roles: &[RoleId]) -> BTreeSet<&'a str> {
    spec.team.iter().filter(|(_, p)| p.roles.iter().any(|r| roles.contains(r))).map(|(id, _)| id.as_str()).collect()
}

/// The roles that may act on a task or decide a decision.
fn acting_roles(node: &crate::spec::Node) -> Vec<RoleId> {
    match node.kind {
        NodeKind::Decision => node.decided_by.iter().filter_map(|d| d.role.clone()).collect(),
        _ => node.roles.clone(),
    }
}

pub(super) fn check(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    if spec.team.is_empty() {
        return;
    }
    approvers(cx);
    for (id, node) in &spec.nodes {
        if !matches!(node.kind, NodeKind::Task | NodeKind::Decision) {
            continue;
        }
        let roles = acting_roles(node);
        if roles.is_empty() {
            continue;
        }
        let people = holders(spec, &roles);
        if people.is_empty() {
            let field = if node.kind == NodeKind::Decision { "decided_by" } else { "roles" };
            let names: Vec<String> = roles.iter().map(|r| format!("`{r}`")).collect();
            cx.push(
                Diagnostic::warning(Code::NobodyOnTheTeam, format!("nobody on the team can act on `{id}`"))
                    .at_key(node_path(id).key(field))
                    .label(format!("no person in `team:` holds {}", names.join(" or ")))
                    .help("give the role to someone in `team:`, or the cycle stops here"),
            );
            continue;
        }
        for (i, other) in node.distinct_from.iter().enumerate() {
            let Some(earlier) = spec.nodes.get(other) else { continue };
            let before = holders(spec, &acting_roles(earlier));
            // Unsatisfiable when one person is the only one who can do this node and the only
            // one who can do the other.
            if people.len() == 1 && before.is_subset(&people) && !before.is_empty() {
                let person = people.iter().next().copied().unwrap_or_default();
                cx.push(
                    Diagnostic::warning(
                        Code::DistinctFromUnsatisfiable,
                        format!(
                            "only `{person}` can complete both `{other}` and `{id}`, which `distinct_from` keeps apart"
                        ),
                    )
                    .at_path(node_path(id).key("distinct_from").index(i))
                    .help("add a second person with the role to `team:`, or the cycle stops at this node"),
                );
            }
        }
    }
}

/// A merge that requires a role's approval needs someone on the team who holds the role and
/// whom the forge knows (a `github:` or `gitlab:` login); otherwise no review can ever count.
fn approvers(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    for (id, node) in &spec.nodes {
        let Some(Action::MergePullRequest(merge)) = &node.action else { continue };
        let Some(requires) = &merge.requires else { continue };
        for (i, role) in requires.approved_by.iter().enumerate() {
            if !spec.roles.contains_key(role) {
                continue; // Reported as an unknown role.
            }
            let known =
                spec.team.values().any(|p| p.roles.contains(role) && (p.github.is_some() || p.gitlab.is_some()));
            if !known {
                cx.push(
                    Diagnostic::warning(
                        Code::NoForgeApprover,
                        format!("the merge at `{id}` requires an approval by role `{role}`, which no reviewer the forge knows holds"),
                    )
                    .at_path(
                        node_path(id).key("action").key("merge_pull_request").key("requires").key("approved_by").index(i),
                    )
                    .label(format!("nobody in `team:` holds `{role}` and has a `github:` or `gitlab:` login"))
                    .help("add the forge login of a person who holds the role to their `team:` entry (`github: their-login`), or every merge here is refused"),
                );
            }
        }
    }
}
