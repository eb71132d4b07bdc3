//! The serde types of a workflow spec: what a YAML file holds, before any checking.
//!
//! These types are only data. [`crate::load`] reads them from YAML with locations, and
//! [`crate::check`] turns a [`Spec`] into a [`crate::CheckedSpec`] that later code can trust.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::WeekTime;
use crate::id::{BranchId, ChannelId, ClassId, EnvironmentId, NodeId, PersonId, PhaseId, RoleId, WindowId};

/// The spec format version this crate reads and writes; every version is listed in the
/// repository's `CHANGELOG.md` (a test fails when this changes without an entry there).
pub const FORMAT_VERSION: u32 = 1;

/// A whole workflow spec: a mermaid flowchart plus its meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kars workflow spec")]
pub struct Spec {
    /// The spec format version; `1`.
    pub version: u32,
    /// The workflow's name, used in messages and release ids.
    pub name: String,
    /// A one-line title (the mermaid document's heading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the workflow is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The IANA time zone of every wall-clock time in the spec (`America/Toronto`).
    pub timezone: String,
    /// How often a cycle starts (default: every week). See [`crate::cadence`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<crate::cadence::Cadence>,
    /// Days on which nobody works: dates and ranges, in the spec's zone. Gates say what they do
    /// on one (`on_holiday`); the simulator's people take them off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<crate::dates::Holiday>,
    /// The mermaid flowchart direction.
    #[serde(default, skip_serializing_if = "Direction::is_default")]
    pub direction: Direction,
    /// The roles that act in the workflow.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub roles: IndexMap<RoleId, Role>,
    /// Who holds which roles: the team roster that resolves an actor's name to roles.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub team: IndexMap<PersonId, Person>,
    /// The roles that may change a running instance's roster (a journaled change); empty means
    /// the roster is fixed when the instance starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub team_managed_by: Vec<RoleId>,
    /// Where notifications go.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub channels: IndexMap<ChannelId, Channel>,
    /// The VCS branches and branch patterns the workflow names.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub branches: IndexMap<BranchId, Branch>,
    /// The deployment environments.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub environments: IndexMap<EnvironmentId, Environment>,
    /// Calendar and freeze windows that restrict merges and work.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub windows: IndexMap<WindowId, Window>,
    /// The mermaid subgraphs, in order, with the nodes each holds.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub phases: IndexMap<PhaseId, Phase>,
    /// Mermaid style classes (`classDef`), each with the nodes it applies to (`class`); a node's
    /// own `style` wins over its classes. Only the picture: a class never changes behaviour.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub classes: IndexMap<ClassId, Class>,
    /// The nodes, keyed by mermaid node id, in the order mermaid declares them.
    pub nodes: IndexMap<NodeId, Node>,
    /// Every mermaid edge, in order.
    pub edges: Vec<Edge>,
}

impl Spec {
    /// An empty spec of the current format named `name` in zone `timezone`, every section
    /// empty: what the mermaid importer and generated specs start from (it is not valid until
    /// it has a start node and roles).
    #[must_use]
    pub fn new(name: impl Into<String>, timezone: impl Into<String>) -> Self {
        Self {
            version: FORMAT_VERSION,
            name: name.into(),
            title: None,
            description: None,
            timezone: timezone.into(),
            cadence: None,
            holidays: Vec::new(),
            direction: Direction::default(),
            roles: IndexMap::new(),
            team: IndexMap::new(),
            team_managed_by: Vec::new(),
            channels: IndexMap::new(),
            branches: IndexMap::new(),
            environments: IndexMap::new(),
            windows: IndexMap::new(),
            phases: IndexMap::new(),
            classes: IndexMap::new(),
            nodes: IndexMap::new(),
            edges: Vec::new(),
        }
    }
}

/// A mermaid flowchart direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Direction {
    /// Top to bottom.
    #[default]
    TB,
    /// Top down (the same as `TB`).
    TD,
    /// Bottom to top.
    BT,
    /// Left to right.
    LR,
    /// Right to left.
    RL,
}

impl Direction {
    fn is_default(&self) -> bool {
        *self == Direction::TB
    }

    /// The mermaid keyword.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::TB => "TB",
            Direction::TD => "TD",
            Direction::BT => "BT",
            Direction::LR => "LR",
            Direction::RL => "RL",
        }
    }
}

/// A role: a kind of actor that may complete tasks and take decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The role's name as people say it (`QA Team`).
    pub title: String,
    /// What the role is responsible for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responsibilities: Vec<String>,
}

/// A person on the team roster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The person's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The roles the person holds.
    pub roles: Vec<RoleId>,
    /// The operating-system logins that are this person's: `kars instance` acts as the person
    /// whose login runs it. Service accounts (a CI runner, a cron job) are people like any other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logins: Vec<String>,
    /// The person's GitHub login (`alice-gh`): a forge adapter counts an approving review by
    /// this login as the person's, with their roles, for a merge whose `requires:` names
    /// `approved_by` roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    /// The person's GitLab username, as [`Person::github`] for GitLab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<String>,
}

/// A notification channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// The channel's address in the chat system (`#kars-releases`).
    pub name: String,
    /// What the channel is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// A VCS branch (`name`) or a family of branches (`pattern`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// An exact branch name (`kars-dev`). Exactly one of `name` and `pattern` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A glob with one `*` (`feature/*`). Exactly one of `name` and `pattern` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// A deployment environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The environment's name as people say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where it is reached (`https://kars-dev.keydatalab.ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The branch deployed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchId>,
}

/// A window that restricts merges and work while it is open.
///
/// It opens and closes either at a recurring calendar time (`at: Saturday 00:00`) or when a
/// node of the running week completes (`after: J`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The window's name as people say it (`Code freeze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the window opens.
    pub opens: WindowEdge,
    /// When the window closes.
    pub closes: WindowEdge,
    /// Branches whose merges the window still allows (`hotfix`); all others are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_merges_from: Vec<BranchId>,
    /// The target branches the merge rule covers; empty means every branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merges_into: Vec<BranchId>,
    /// Human work (task completions and decisions) is refused while the window is open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause_tasks: bool,
}

/// One edge of a window: a calendar time or a node's completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowEdge {
    /// Every week at this weekday and time in the workflow's zone.
    At(WeekTime),
    /// When this node of the running week completes.
    After(NodeId),
    /// Once, at this date and time in the workflow's zone (a year-end freeze).
    On(crate::dates::LocalDateTime),
}

/// A phase: a mermaid subgraph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The subgraph title (`Friday - QA Day`); the id is shown when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The nodes inside the subgraph, in order.
    pub nodes: Vec<NodeId>,
}

/// A mermaid style class: `classDef` properties and the nodes `class` gives them to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Class {
    /// Mermaid style properties (`fill: "#ffcdd2"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub style: BTreeMap<String, String>,
    /// The nodes with this class, in order. The class `default` applies to every node and
    /// lists none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeId>,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Where each cycle begins. Exactly one per spec; an edge back to it starts the next cycle.
    Start,
    /// A terminal node: the cycle ends with the node's `outcome`.
    End,
    /// Human work, completed by an actor who holds one of `roles`.
    Task,
    /// Automatic work: the engine emits the node's `action` as an effect.
    Action,
    /// A choice between the labelled edges that leave it.
    Decision,
    /// A pause that passes on by itself, once its `gate` (if any) opens.
    Wait,
    /// A fork: every edge that leaves it starts at once, one branch each (the edges need no
    /// labels). Its branches meet again at exactly one `join`.
    Parallel,
    /// Where the branches of one `parallel` node meet; it passes on by its `join` rule.
    Join,
}

/// A node of the flowchart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The label, with real line breaks (mermaid shows them as `<br/>`).
    pub label: String,
    /// What the node is.
    pub kind: NodeKind,
    /// Longer text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Mermaid style properties (`fill: "#c8e6c9"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub style: BTreeMap<String, String>,
    /// Tasks: the roles that may complete it. Decisions: the roles that may decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleId>,
    /// Waiting actions: the roles that may report the action's result by hand. Empty: the
    /// roles of the nearest task or role decision before the action (on its single way in);
    /// results the driver's own adapters report need no role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported_by: Vec<RoleId>,
    /// Tasks: the outcomes an actor may report (`approved`); empty means none is asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<String>,
    /// Tasks: the actor must differ from whoever completed these nodes this cycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_from: Vec<NodeId>,
    /// Actions and ends: the effect to perform on arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Decisions: who or what picks the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// The node cannot start before this time of the cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<WeekTime>,
    /// What the gate does when it would open on a holiday (default `keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_holiday: Option<crate::dates::OnHoliday>,
    /// The node should be complete by this time of the cycle, or it escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// The node starts a retry loop, entered at most `max_attempts` times a cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Ends, and nodes with an edge back to the start: how the cycle ends through this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Joins: when the branches of the fork pass on (default `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinRule>,
}

impl Node {
    /// A node of `kind` labelled `label`, every other field left out (no roles, no gate, no
    /// action): what a builder of specs starts from.
    #[must_use]
    pub fn new(label: impl Into<String>, kind: NodeKind) -> Self {
        Self {
            label: label.into(),
            kind,
            description: None,
            style: BTreeMap::new(),
            roles: Vec::new(),
            reported_by: Vec::new(),
            outcomes: Vec::new(),
            distinct_from: Vec::new(),
            action: None,
            decided_by: None,
            gate: None,
            on_holiday: None,
            deadline: None,
            retry: None,
            outcome: None,
            join: None,
        }
    }
}

/// When a `join` node passes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinRule {
    /// When every branch of its fork has arrived.
    #[default]
    All,
    /// When the first branch arrives; the branches still running are cancelled, and each
    /// cancellation is recorded.
    First,
}

/// An automatic effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Post a message to channels and roles. It does not wait for a result.
    Notify(Notify),
    /// Open a pull request; waits for the VCS to report it opened.
    OpenPullRequest(BranchPair),
    /// Merge the pull request between two branches; waits for the VCS result.
    MergePullRequest(MergeAction),
    /// Deploy to an environment; waits for the deploy to succeed or fail.
    Deploy(EnvironmentRef),
    /// Roll an environment back; waits for the result.
    Rollback(EnvironmentRef),
    /// Run a check suite; waits for it to pass or fail.
    RunChecks(Checks),
}

/// A message to channels and roles. Templates may use `{release}`, `{workflow}`, `{node}`,
/// `{label}` and `{deadline}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Where the message goes.
    pub to: Vec<Recipient>,
    /// The message template.
    pub message: String,
}

/// Who receives a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Recipient {
    /// A channel.
    Channel(ChannelId),
    /// Everyone who holds a role.
    Role(RoleId),
}

/// A source and a target branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPair {
    /// The source branch or pattern.
    pub from: BranchId,
    /// The target branch.
    pub to: BranchId,
}

/// A merge: a source and a target branch, and what the merge needs on a forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeAction {
    /// The source branch or pattern.
    pub from: BranchId,
    /// The target branch.
    pub to: BranchId,
    /// What the pull request needs before it merges, checked by forge adapters (GitHub,
    /// GitLab) over their own defaults; a local git repository has no reviews and ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<MergeRequirements>,
}

/// What a merge needs on a forge. Each field left out keeps the adapter's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequirements {
    /// Approving reviews needed (the latest review of each reviewer counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<u32>,
    /// Roles that must each have approved: for every role, an approving review (the latest
    /// of its reviewer) by a person on the roster who holds it, known to the forge by the
    /// person's `github:` or `gitlab:` login. One person may stand for several roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<RoleId>,
    /// Checks (GitHub check runs or commit statuses, GitLab pipeline jobs) that must have
    /// passed on the approved head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// How to merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<MergeMethod>,
}

/// How a forge merges a pull request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    /// A merge commit (`git merge --no-ff`), as the local git adapter does.
    #[default]
    Merge,
    /// One squashed commit.
    Squash,
    /// The commits replayed onto the target.
    Rebase,
}

impl MergeMethod {
    /// The name the spec and GitHub's `merge_method` use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Squash => "squash",
            Self::Rebase => "rebase",
        }
    }
}

/// An environment named by an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRef {
    /// The environment.
    pub environment: EnvironmentId,
}

/// A check suite to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// The suite's name (`smoke`).
    pub suite: String,
    /// The environment it runs against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentId>,
}

/// Who or what takes a decision. Exactly one of `role` and `outcome_of` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecidedBy {
    /// An actor with this role picks a branch label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleId>,
    /// The recorded outcome of this earlier node picks the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_of: Option<NodeId>,
    /// With `outcome_of`: which branch label each outcome takes (`succeeded: "Yes"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, String>,
}

/// A deadline and what happens when it passes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// The node should be complete by this time of the cycle.
    pub by: WeekTime,
    /// What happens, once, when the deadline passes with the node not complete.
    pub escalate: Escalation,
}

/// A retry bound on a loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// How many times a cycle the node may be entered.
    pub max_attempts: u32,
    /// What happens on the next entry once the attempts are used up.
    pub on_exhausted: Escalation,
}

/// Effects to emit, and optionally where the cycle goes next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Who is told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Recipient>,
    /// The message template (see [`Notify`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the cycle goes; absent means it carries on where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<Then>,
}

/// A jump taken by an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Then {
    /// Continue at this node.
    Goto(NodeId),
    /// End the cycle with this outcome (`slipped`); the next cycle starts.
    End(String),
}

/// A directed edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// The source node.
    pub from: NodeId,
    /// The target node.
    pub to: NodeId,
    /// The mermaid edge label; a decision's branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}
