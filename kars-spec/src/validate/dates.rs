//! Calendar rules: the cadence's anchor is a Monday and no week time lies past the cycle's
//! next start; holiday ranges run forward; `on_holiday` goes with a gate.

use super::{Cx, node_path, root};
use crate::diagnostic::{Code, Diagnostic};

/// The cadence's anchor is a Monday, and no week time lies past the cycle's next start.
pub(super) fn check(cx: &mut Cx<'_>) {
    let cadence = cx.spec.cadence.unwrap_or_default();
    if !cadence.anchored_on_monday() {
        let anchor = cadence.anchor();
        cx.push(
            Diagnostic::error(Code::CadenceAnchor, format!("cadence anchor `{anchor}` is a {}", anchor.format("%A")))
                .at_path(root().key("cadence").key("anchor"))
                .help("cycles start on Mondays: anchor the cadence on the first Monday of a cycle"),
        );
    }
    for (i, holiday) in cx.spec.holidays.iter().enumerate() {
        let (from, to) = holiday.span();
        if to < from {
            cx.push(
                Diagnostic::error(
                    Code::HolidayRange,
                    format!("holiday range `{from}` to `{to}` ends before it starts"),
                )
                .at_path(root().key("holidays").index(i).key("to"))
                .help("write `from:` as the first day and `to:` as the last (both included)"),
            );
        }
    }
    for (id, node) in &cx.spec.nodes {
        if node.on_holiday.is_some() && node.gate.is_none() {
            cx.push(
                Diagnostic::warning(
                    Code::OnHolidayWithoutGate,
                    format!("`on_holiday` on `{id}` does nothing: the node has no gate"),
                )
                .at_path(node_path(id).key("on_holiday"))
                .help("add a `gate:`, or remove `on_holiday`"),
            );
        }
    }
    let every = cadence.every.0;
    for (id, node) in &cx.spec.nodes {
        let times = [
            node.gate.map(|g| (g, node_path(id).key("gate"))),
            node.deadline.as_ref().map(|d| (d.by, node_path(id).key("deadline").key("by"))),
        ];
        for (time, path) in times.into_iter().flatten() {
            if time.week() > every {
                cx.push(
                    Diagnostic::warning(
                        Code::PastCadence,
                        format!("`{time}` on `{id}` lies past the cycle's {every}-week cadence"),
                    )
                    .at_path(path)
                    .label("the next cycle has started by then")
                    .help(format!("use a week offset up to `+{every}w`, or a longer `cadence: {{ every: … }}`")),
                );
            }
        }
    }
}
