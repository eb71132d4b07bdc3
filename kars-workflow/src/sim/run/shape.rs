//! What the simulator reads from a compiled workflow: roles used, completion outcomes and the
//! branches a merge bot works with.

use kars_spec::RoleId;

use crate::workflow::{Decider, NodeIndex, Workflow};

/// The role an actor used on a node: the first of the node's roles the actor holds.
pub(super) fn role_for<'a>(workflow: &'a Workflow, node: NodeIndex, roles: &[RoleId]) -> Option<&'a RoleId> {
    let compiled = workflow.node(node);
    match &compiled.decider {
        Some(Decider::Role(role)) => Some(role),
        _ => compiled.roles.iter().find(|r| roles.contains(r)),
    }
}

/// The outcomes of the nodes whose out-edge leads back to the start (`released` for KARS).
pub(super) fn completion_outcomes(workflow: &Workflow) -> Vec<String> {
    let mut outcomes: Vec<String> = Vec::new();
    for (i, node) in workflow.nodes.iter().enumerate() {
        let index = NodeIndex(i as u16);
        if workflow.out_edges(index).iter().any(|e| e.to == workflow.start)
            && let Some(outcome) = node.outcome
        {
            let text = workflow.label(outcome).to_owned();
            if !outcomes.contains(&text) {
                outcomes.push(text);
            }
        }
    }
    outcomes
}

/// The last index of a list of `len` items, for picking one at random (0 for an empty list;
/// callers check before indexing).
pub(super) fn last_index(len: usize) -> u32 {
    u32::try_from(len.saturating_sub(1)).unwrap_or(u32::MAX)
}

/// The branch patterns the merge bot draws sources from (prefix, suffix around `*`), and the
/// branches the windows guard.
pub(super) fn merge_branches(workflow: &Workflow) -> (Vec<(String, String)>, Vec<String>) {
    use crate::workflow::BranchMatcher;
    let sources = workflow
        .branches
        .iter()
        .filter_map(|b| match b {
            BranchMatcher::Pattern { prefix, suffix } => Some((prefix.clone(), suffix.clone())),
            BranchMatcher::Name(_) => None,
        })
        .collect();
    let mut targets: Vec<String> = Vec::new();
    for window in &workflow.windows {
        for slot in window.merges_into.iter() {
            if let Some(BranchMatcher::Name(name)) = workflow.branches.get(usize::from(*slot))
                && !targets.contains(name)
            {
                targets.push(name.clone());
            }
        }
    }
    if targets.is_empty() {
        targets = workflow
            .branches
            .iter()
            .filter_map(|b| match b {
                BranchMatcher::Name(name) => Some(name.clone()),
                BranchMatcher::Pattern { .. } => None,
            })
            .collect();
    }
    (sources, targets)
}
