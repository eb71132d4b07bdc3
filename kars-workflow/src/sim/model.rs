//! The simulator's actor model: how long work takes and how often things go wrong, read from a
//! small YAML file beside the spec or taken from defaults, and checked against the spec.
//!
//! ```yaml
//! version: 1
//! working_hours: { days: [Mon, Tue, Wed, Thu, Fri], from: "09:00", to: "17:00" }
//! durations:
//!   task: 30m..2h          # human work, in working time
//!   decision: 10m..45m
//!   action: 1m..10m        # until an automatic action reports its result, in wall time
//!   nodes: { D: 4h..12h }  # per node
//! branches:
//!   N: { "No": [0.30, 0.40] }   # chance of `No` on the 1st visit, then on every later one
//! action_failures: { Y: 0.05 }
//! late: { probability: 0.05, extra: 2h..6h }
//! unauthorized: 0.02
//! merges_per_week: 3
//! forge:                   # merges whose spec `requires:` approvals or checks
//!   review: 30m..4h        # from a pull request's opening to each review, in working time
//!   approval: 0.9          # the chance a review approves
//!   checks: 5m..45m        # until a named check concludes, in wall time
//!   check_failure: 0.05    # the chance it fails
//! ```

use std::collections::{BTreeMap, HashSet};

use chrono::{NaiveTime, Weekday};
use indexmap::IndexMap;
use kars_spec::spec::{Action, NodeKind, Spec};
use kars_spec::{CheckedSpec, NodeId};
use serde::{Deserialize, Serialize};

use super::actors::Team;
use super::hours::{MinuteRange, WorkingHours};

/// The model file format version this build reads; every version is listed in the
/// repository's `CHANGELOG.md` (a test fails when this changes without an entry there).
pub const MODEL_VERSION: u32 = 1;

/// The largest model file kars reads, in bytes.
pub const MAX_MODEL_BYTES: usize = 256 * 1024;

/// A model file as written, before it is checked against a spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The model format version; `1`.
    pub version: u32,
    /// When people work; Monday to Friday, 09:00 to 17:00 by default.
    #[serde(default)]
    pub working_hours: Option<HoursFile>,
    /// How long work takes.
    #[serde(default)]
    pub durations: DurationsFile,
    /// For decisions taken by people: the chance of each branch, per visit in a cycle.
    #[serde(default)]
    pub branches: IndexMap<NodeId, IndexMap<String, Vec<f64>>>,
    /// For actions that report a result: the chance that it fails.
    #[serde(default)]
    pub action_failures: IndexMap<NodeId, f64>,
    /// The chance that a person finishes a task late, and by how much.
    #[serde(default)]
    pub late: Option<LateFile>,
    /// The chance that someone without the role tries a task before the right person does.
    #[serde(default)]
    pub unauthorized: Option<f64>,
    /// How many merges from pattern branches (`feature/*`, `hotfix/*`) the team's merge bot
    /// attempts each week, at random times; the engine's windows decide which land.
    #[serde(default)]
    pub merges_per_week: Option<u32>,
    /// Reviews and checks on the forge, for merges whose spec `requires:` them.
    #[serde(default)]
    pub forge: Option<ForgeFile>,
}

/// Reviews and checks on the forge as written; each field left out keeps its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeFile {
    /// From a pull request's opening to each review, in working time.
    #[serde(default)]
    pub review: Option<MinuteRange>,
    /// The chance a review approves (otherwise it asks for changes, and does not count).
    #[serde(default)]
    pub approval: Option<f64>,
    /// From a pull request's opening until a named check concludes, in wall time.
    #[serde(default)]
    pub checks: Option<MinuteRange>,
    /// The chance a named check fails.
    #[serde(default)]
    pub check_failure: Option<f64>,
}

/// How the simulated forge treats pull requests whose merge `requires:` reviews or checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ForgeModel {
    pub(crate) review: MinuteRange,
    pub(crate) approval: f64,
    pub(crate) checks: MinuteRange,
    pub(crate) check_failure: f64,
}

impl Default for ForgeModel {
    fn default() -> Self {
        Self {
            review: MinuteRange { min: 30, max: 240 },
            approval: 0.9,
            checks: MinuteRange { min: 5, max: 45 },
            check_failure: 0.05,
        }
    }
}

/// Working hours as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursFile {
    /// Working days (`Mon`..`Sun`).
    pub days: Vec<String>,
    /// Start of the working day, `HH:MM` local.
    pub from: String,
    /// End of the working day, `HH:MM` local.
    pub to: String,
}

/// Durations as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationsFile {
    /// Human tasks, in working time.
    #[serde(default)]
    pub task: Option<MinuteRange>,
    /// Decisions taken by people, in working time.
    #[serde(default)]
    pub decision: Option<MinuteRange>,
    /// Automatic actions until their result, in wall time.
    #[serde(default)]
    pub action: Option<MinuteRange>,
    /// Per-node overrides.
    #[serde(default)]
    pub nodes: IndexMap<NodeId, MinuteRange>,
}

/// Lateness as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateFile {
    /// The chance, per task, of finishing late.
    pub probability: f64,
    /// The extra working time a late task takes.
    pub extra: MinuteRange,
}

/// A problem in a model file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The YAML did not parse into a model.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file name, with the line and column when they are known (`model.yaml:3:7`).
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file is larger than [`MAX_MODEL_BYTES`].
    #[error("{origin}: the model file is {size} bytes; the limit is {MAX_MODEL_BYTES}")]
    TooLarge {
        /// The file name.
        origin: String,
        /// Its size.
        size: usize,
    },
    /// A value is out of range or names something the spec does not have.
    #[error("{origin}: at `{path}`: {message}")]
    Invalid {
        /// The file name.
        origin: String,
        /// The path in the document (`branches.N.No`).
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A checked model, ready for the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(crate) hours: WorkingHours,
    pub(crate) task: MinuteRange,
    pub(crate) decision: MinuteRange,
    pub(crate) action: MinuteRange,
    pub(crate) node_durations: BTreeMap<NodeId, MinuteRange>,
    /// Per decision: (branch label, chance per visit) in the spec's edge order.
    pub(crate) branches: BTreeMap<NodeId, Vec<(String, Vec<f64>)>>,
    pub(crate) action_failures: BTreeMap<NodeId, f64>,
    pub(crate) late: f64,
    pub(crate) late_extra: MinuteRange,
    pub(crate) unauthorized: f64,
    pub(crate) merges_per_week: u32,
    pub(crate) forge: ForgeModel,
    pub(crate) team: Team,
}

impl Model {
    /// The default model for `spec`: Monday–Friday 09:00–17:00, tasks 30m..2h, decisions
    /// 10m..45m, actions 1m..10m; a branch of a people's decision that loops back (a retry) is
    /// taken 30% of the time on the first visit and 40% later (a fix fails retest more often),
    /// the other branches share the rest; actions whose outcome a decision reads fail 5% of the
    /// time (others never); 5% of tasks finish 2h..6h late; 2% of tasks see an unauthorized try;
    /// the merge bot tries 3 merges a week; on the forge, reviews come 30m..4h (working time)
    /// after a pull request opens and 90% approve, named checks conclude after 5m..45m and 5%
    /// fail (only merges whose spec `requires:` reviews or checks see them).
    #[must_use]
    pub fn defaults(spec: &CheckedSpec) -> Model {
        Self::check(spec, &ModelFile { version: MODEL_VERSION, ..ModelFile::default() }, "<defaults>")
            .unwrap_or_else(|_| Self::bare())
    }

    fn bare() -> Model {
        Model {
            hours: WorkingHours::default(),
            task: MinuteRange { min: 30, max: 120 },
            decision: MinuteRange { min: 10, max: 45 },
            action: MinuteRange { min: 1, max: 10 },
            node_durations: BTreeMap::new(),
            branches: BTreeMap::new(),
            action_failures: BTreeMap::new(),
            late: 0.05,
            late_extra: MinuteRange { min: 120, max: 360 },
            unauthorized: 0.02,
            merges_per_week: 3,
            forge: ForgeModel::default(),
            team: Team { people: Vec::new() },
        }
    }

    /// Reads a model file and checks it against `spec`.
    ///
    /// # Errors
    /// Returns [`ModelError`] for YAML errors (with line and column), unknown keys, values out of
    /// range, and nodes or branches the spec does not have.
    pub fn load(spec: &CheckedSpec, source: &str, origin: &str) -> Result<Model, ModelError> {
        if source.len() > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge { origin: origin.to_owned(), size: source.len() });
        }
        let options = super::yaml::options();
        let file: ModelFile =
            serde_saphyr::from_str_with_options(source, options).map_err(|e| syntax_error(&e, origin))?;
        Self::check(spec, &file, origin)
    }

    /// Checks a model file against `spec`.
    ///
    /// # Errors
    /// Returns the first [`ModelError::Invalid`] found.
    pub fn check(spec: &CheckedSpec, file: &ModelFile, origin: &str) -> Result<Model, ModelError> {
        let invalid = |path: String, message: String| ModelError::Invalid { origin: origin.to_owned(), path, message };
        let spec = spec.spec();
        if file.version != MODEL_VERSION {
            return Err(invalid(
                "version".into(),
                format!("model version {} is not supported; write `version: 1`", file.version),
            ));
        }
        let mut model = Self::bare();
        model.team = Team::from_spec(spec);
        if let Some(h) = &file.working_hours {
            model.hours = check_hours(h).map_err(|m| invalid("working_hours".into(), m))?;
        }
        let d = &file.durations;
        model.task = d.task.unwrap_or(model.task);
        model.decision = d.decision.unwrap_or(model.decision);
        model.action = d.action.unwrap_or(model.action);
        for (id, range) in &d.nodes {
            let node =
                spec.nodes.get(id).ok_or_else(|| invalid(format!("durations.nodes.{id}"), unknown_node(spec, id)))?;
            if matches!(node.kind, NodeKind::Start | NodeKind::End | NodeKind::Wait) {
                let kind = format!("{:?}", node.kind).to_lowercase();
                return Err(invalid(
                    format!("durations.nodes.{id}"),
                    format!("node `{id}` is a {kind} node; only tasks, decisions and actions take time"),
                ));
            }
            model.node_durations.insert(id.clone(), *range);
        }
        // Decisions taken by people: defaults first, then the file's overrides.
        for (id, node) in &spec.nodes {
            if node.kind == NodeKind::Decision && node.decided_by.as_ref().is_some_and(|d| d.role.is_some()) {
                model.branches.insert(id.clone(), default_branches(spec, id));
            }
        }
        for (id, chances) in &file.branches {
            let path = format!("branches.{id}");
            let labels = match model.branches.get(id) {
                Some(list) => list.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
                None if spec.nodes.contains_key(id) => {
                    return Err(invalid(
                        path,
                        format!("node `{id}` is not a decision taken by a role; only those have branch chances"),
                    ));
                }
                None => return Err(invalid(path, unknown_node(spec, id))),
            };
            let mut list: Vec<(String, Vec<f64>)> = labels.iter().map(|l| (l.clone(), Vec::new())).collect();
            for (label, per_visit) in chances {
                let slot = list.iter_mut().find(|(l, _)| l == label).ok_or_else(|| {
                    invalid(
                        format!("{path}.{label}"),
                        format!("`{id}` has no branch `{label}`; its branches are {}", quoted(&labels)),
                    )
                })?;
                if per_visit.is_empty() || per_visit.iter().any(|p| !(0.0..=1.0).contains(p)) {
                    return Err(invalid(
                        format!("{path}.{label}"),
                        "give one or more chances between 0 and 1, like `[0.3, 0.4]`".into(),
                    ));
                }
                slot.1.clone_from(per_visit);
            }
            fill_rest(&mut list).map_err(|m| invalid(path, m))?;
            model.branches.insert(id.clone(), list);
        }
        for (id, node) in &spec.nodes {
            if let Some(dec) = &node.decided_by
                && let Some(source) = &dec.outcome_of
                && spec.nodes.get(source).is_some_and(|n| n.kind == NodeKind::Action)
            {
                let _ = id;
                model.action_failures.insert(source.clone(), 0.05);
            }
        }
        for (id, p) in &file.action_failures {
            let path = format!("action_failures.{id}");
            let node = spec.nodes.get(id).ok_or_else(|| invalid(path.clone(), unknown_node(spec, id)))?;
            let waits = node.kind == NodeKind::Action && !matches!(node.action, Some(Action::Notify(_)) | None);
            if !waits {
                return Err(invalid(path, format!("node `{id}` is not an action that reports a result")));
            }
            check_chance(*p).map_err(|m| invalid(path, m))?;
            model.action_failures.insert(id.clone(), *p);
        }
        if let Some(late) = &file.late {
            check_chance(late.probability).map_err(|m| invalid("late.probability".into(), m))?;
            model.late = late.probability;
            model.late_extra = late.extra;
        }
        if let Some(p) = file.unauthorized {
            check_chance(p).map_err(|m| invalid("unauthorized".into(), m))?;
            model.unauthorized = p;
        }
        if let Some(n) = file.merges_per_week {
            if n > 100 {
                return Err(invalid(
                    "merges_per_week".into(),
                    format!("{n} merges a week is more than the 100 the simulator takes"),
                ));
            }
            model.merges_per_week = n;
        }
        if let Some(forge) = &file.forge {
            let f = &mut model.forge;
            f.review = forge.review.unwrap_or(f.review);
            f.checks = forge.checks.unwrap_or(f.checks);
            if let Some(p) = forge.approval {
                check_chance(p).map_err(|m| invalid("forge.approval".into(), m))?;
                f.approval = p;
            }
            if let Some(p) = forge.check_failure {
                check_chance(p).map_err(|m| invalid("forge.check_failure".into(), m))?;
                f.check_failure = p;
            }
        }
        Ok(model)
    }
}

/// A YAML or shape error as `file:line:column: message`.
fn syntax_error(error: &serde_saphyr::Error, origin: &str) -> ModelError {
    let message = super::yaml::parser_message(error, "model files");
    let origin = match super::yaml::location(error) {
        Some((line, column)) => format!("{origin}:{line}:{column}"),
        None => origin.to_owned(),
    };
    ModelError::Syntax { origin, message }
}

fn check_chance(p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) { Ok(()) } else { Err(format!("{p} is not a chance; write a number between 0 and 1")) }
}

fn quoted(labels: &[String]) -> String {
    labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
}

fn unknown_node(spec: &Spec, id: &NodeId) -> String {
    let close = spec.nodes.keys().find(|k| k.as_str().eq_ignore_ascii_case(id.as_str()));
    match close {
        Some(k) => format!("the spec has no node `{id}` (did you mean `{k}`?)"),
        None => format!("the spec has no node `{id}`"),
    }
}

fn check_hours(h: &HoursFile) -> Result<WorkingHours, String> {
    let mut days = Vec::new();
    for d in &h.days {
        let day: Weekday = d.parse().map_err(|_| format!("`{d}` is not a weekday; write Mon..Sun"))?;
        days.push(day);
    }
    let time = |t: &str| NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("`{t}` is not a time; write HH:MM"));
    let (from, to) = (time(&h.from)?, time(&h.to)?);
    WorkingHours::new(&days, from, to).ok_or_else(|| "give at least one day and a `from` before `to`".to_owned())
}

/// Default chances for a decision taken by people: a branch that loops back gets 0.30 then 0.40.
fn default_branches(spec: &Spec, decision: &NodeId) -> Vec<(String, Vec<f64>)> {
    let mut list: Vec<(String, Vec<f64>)> = spec
        .edges
        .iter()
        .filter(|e| &e.from == decision)
        .map(|e| {
            let label = e.label.clone().unwrap_or_default();
            let chances = if loops_back(spec, &e.to, decision) { vec![0.30, 0.40] } else { Vec::new() };
            (label, chances)
        })
        .collect();
    // Only default the loop when some branch leaves it; otherwise share evenly.
    if list.iter().all(|(_, c)| !c.is_empty()) {
        list.iter_mut().for_each(|(_, c)| c.clear());
    }
    let _ = fill_rest(&mut list);
    list
}

/// Whether `from` reaches `target` without passing through the start node.
fn loops_back(spec: &Spec, from: &NodeId, target: &NodeId) -> bool {
    let starts: HashSet<&NodeId> =
        spec.nodes.iter().filter(|(_, n)| n.kind == NodeKind::Start).map(|(id, _)| id).collect();
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(at) = stack.pop() {
        if at == target {
            return true;
        }
        if starts.contains(at) || !seen.insert(at) {
            continue;
        }
        stack.extend(spec.edges.iter().filter(|e| &e.from == at).map(|e| &e.to));
    }
    false
}

/// Gives the branches without chances an even share of what is left, visit by visit.
fn fill_rest(list: &mut [(String, Vec<f64>)]) -> Result<(), String> {
    let visits = list.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1);
    let open = list.iter().filter(|(_, c)| c.is_empty()).count();
    for visit in 0..visits {
        let taken: f64 = list.iter().filter(|(_, c)| !c.is_empty()).map(|(_, c)| at_visit(c, visit)).sum();
        if taken > 1.0 + 1e-9 {
            return Err(format!("the chances of visit {} add up to {taken:.3}, more than 1", visit + 1));
        }
        if open == 0 && (taken - 1.0).abs() > 1e-9 {
            return Err(format!(
                "the chances of visit {} add up to {taken:.3}; with every branch listed they must add up to 1",
                visit + 1
            ));
        }
    }
    let shares: Vec<f64> = (0..visits)
        .map(|visit| {
            let taken: f64 = list.iter().filter(|(_, c)| !c.is_empty()).map(|(_, c)| at_visit(c, visit)).sum();
            if open == 0 { 0.0 } else { ((1.0 - taken) / open as f64).max(0.0) }
        })
        .collect();
    for (_, chances) in list.iter_mut() {
        if chances.is_empty() {
            chances.clone_from(&shares);
        }
    }
    Ok(())
}

/// The chance for a visit: the list's entry, or its last one for later visits.
pub(crate) fn at_visit(chances: &[f64], visit: usize) -> f64 {
    chances.get(visit).or(chances.last()).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kars() -> CheckedSpec {
        let yaml = include_str!("../../../workflows/kars-release.yaml");
        kars_spec::load(yaml, "kars-release.yaml").unwrap()
    }

    #[test]
    fn defaults_find_the_retry_branch_and_the_deploy() {
        let model = Model::defaults(&kars());
        let n = &model.branches[&NodeId::new("N").unwrap()];
        assert_eq!(n, &vec![("No".to_owned(), vec![0.30, 0.40]), ("Yes".to_owned(), vec![0.70, 0.60])]);
        assert_eq!(model.action_failures.get(&NodeId::new("Y").unwrap()), Some(&0.05));
        assert_eq!(model.action_failures.len(), 1);
    }

    #[test]
    fn files_override_and_are_checked() {
        let spec = kars();
        let ok = "version: 1\nbranches:\n  N: { \"No\": [0.5] }\naction_failures: { Y: 0.2 }\nunauthorized: 0.1\n";
        let model = Model::load(&spec, ok, "m.yaml").unwrap();
        assert_eq!(model.branches[&NodeId::new("N").unwrap()][1].1, vec![0.5]);
        let bad_label = "version: 1\nbranches:\n  N: { Maybe: [0.5] }\n";
        let err = Model::load(&spec, bad_label, "m.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.yaml: at `branches.N.Maybe`: `N` has no branch `Maybe`; its branches are `No`, `Yes`"
        );
        let bad_node = "version: 1\naction_failures: { y: 0.2 }\n";
        assert_eq!(
            Model::load(&spec, bad_node, "m.yaml").unwrap_err().to_string(),
            "m.yaml: at `action_failures.y`: the spec has no node `y` (did you mean `Y`?)"
        );
        let bad_chance = "version: 1\nunauthorized: 2\n";
        assert!(Model::load(&spec, bad_chance, "m.yaml").unwrap_err().to_string().contains("not a chance"));
        let unknown_key = "version: 1\nbranchez: {}\n";
        assert!(matches!(Model::load(&spec, unknown_key, "m.yaml"), Err(ModelError::Syntax { .. })));
        let too_much = "version: 1\nbranches:\n  N: { \"No\": [0.7], \"Yes\": [0.7] }\n";
        assert!(Model::load(&spec, too_much, "m.yaml").unwrap_err().to_string().contains("add up to"));
    }
}
