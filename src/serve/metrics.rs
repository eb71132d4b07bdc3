//! Prometheus metrics in the text exposition format: requests by status, refusals by kind,
//! instances by node, effects pending and retried, and how late each instance's due timer is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use kars_workflow::driver::LogKind;

use super::{App, ServeStore};

/// Counters kept by the server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<u16, u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts a response with `status`, and its problem kind if it is one.
    pub fn count(&self, status: u16, problem: Option<&str>) {
        *self.requests.lock().unwrap_or_else(PoisonError::into_inner).entry(status).or_default() += 1;
        if let Some(kind) = problem {
            *self.refusals.lock().unwrap_or_else(PoisonError::into_inner).entry(kind.to_owned()).or_default() += 1;
        }
    }
}

/// One instance's figures.
struct Figures {
    node: String,
    pending: usize,
    retries: usize,
    late_seconds: f64,
}

/// The metrics page.
pub(crate) async fn render<S: ServeStore>(app: &App<S>) -> String {
    let now: DateTime<Utc> = app.inner.clock.now();
    let hosted: Vec<_> = app.inner.instances.read().await.values().cloned().collect();
    let mut figures = Vec::with_capacity(hosted.len());
    for h in hosted {
        figures.push(
            h.handle
                .read(|d| {
                    let node =
                        d.instance().current_node().map_or_else(|| "between_cycles".to_owned(), |n| n.to_string());
                    let retries = d.log().iter().filter(|e| matches!(e.kind, LogKind::Retrying { .. })).count();
                    let late = d.next_wake().filter(|w| *w < now).map_or(0.0, |w| (now - w).as_seconds_f64());
                    Figures { node, pending: d.pending_effects().count(), retries, late_seconds: late }
                })
                .await,
        );
    }
    let mut out = String::new();
    let _ = writeln!(out, "# HELP kars_instances Hosted instances by the node they are at.");
    let _ = writeln!(out, "# TYPE kars_instances gauge");
    let mut by_node: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &figures {
        *by_node.entry(&f.node).or_default() += 1;
    }
    for (node, n) in by_node {
        let _ = writeln!(out, "kars_instances{{node=\"{node}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP kars_effects_pending Effects journaled and not yet performed.");
    let _ = writeln!(out, "# TYPE kars_effects_pending gauge");
    let _ = writeln!(out, "kars_effects_pending {}", figures.iter().map(|f| f.pending).sum::<usize>());
    let _ = writeln!(out, "# HELP kars_effect_retries_total Effect attempts that failed and were retried.");
    let _ = writeln!(out, "# TYPE kars_effect_retries_total counter");
    let _ = writeln!(out, "kars_effect_retries_total {}", figures.iter().map(|f| f.retries).sum::<usize>());
    let _ = writeln!(out, "# HELP kars_timer_lateness_seconds How long the most overdue timer has been due.");
    let _ = writeln!(out, "# TYPE kars_timer_lateness_seconds gauge");
    let late = figures.iter().map(|f| f.late_seconds).fold(0.0, f64::max);
    let _ = writeln!(out, "kars_timer_lateness_seconds {late}");
    let _ = writeln!(out, "# HELP kars_http_requests_total Responses by status.");
    let _ = writeln!(out, "# TYPE kars_http_requests_total counter");
    for (status, n) in app.inner.metrics.requests.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let _ = writeln!(out, "kars_http_requests_total{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP kars_refusals_total Refused requests by problem kind.");
    let _ = writeln!(out, "# TYPE kars_refusals_total counter");
    for (kind, n) in app.inner.metrics.refusals.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let _ = writeln!(out, "kars_refusals_total{{kind=\"{kind}\"}} {n}");
    }
    out
}
