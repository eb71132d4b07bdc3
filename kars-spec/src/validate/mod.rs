//! The validator: every rule a [`Spec`] must pass to become a [`CheckedSpec`], all reported at once.
//!
//! Rules live by topic: this file checks the sections around the graph (version, zone, team,
//! branches, environments, windows, phases, edges), [`nodes`] the fields of each node, [`graph`]
//! the shape of the flowchart (petgraph), [`fork`] the blocks of parallel branches, [`time`] the order of gates and deadlines, [`dates`]
//! the cadence, holidays and `on_holiday`, [`team`] what the roster can do, [`paused`] work
//! that a `pause_tasks` window always refuses. Each
//! diagnostic carries a path into the document; the loader turns paths into lines and columns.

mod dates;
mod fork;
mod graph;
mod nodes;
mod paused;
mod team;
mod time;

use std::collections::HashMap;

use chrono_tz::Tz;

use crate::calendar;
use crate::checked::CheckedSpec;
use crate::diagnostic::{Code, Diagnostic, Location, Path, Report};
use crate::id::NodeId;
use crate::spec::{FORMAT_VERSION, Recipient, Spec, WindowEdge};
use crate::suggest;

/// After this many diagnostics, unknown references list the defined names instead of
/// searching for the closest one.
const MAX_SUGGESTIONS: usize = 100;

/// The placeholders a message template may use.
pub const PLACEHOLDERS: &[&str] = &["release", "workflow", "node", "label", "deadline"];

/// Checks `spec`; see the crate docs for what a [`CheckedSpec`] guarantees.
///
/// # Errors
/// Returns a [`Report`] of every error and warning when any rule fails.
pub(crate) fn validate(spec: Spec) -> Result<CheckedSpec, Report> {
    let mut cx = Cx { spec: &spec, out: Vec::new() };
    let zone = cx.sections();
    nodes::check(&mut cx);
    cx.edges();
    graph::check(&mut cx);
    let forks = fork::check(&mut cx);
    time::check(&mut cx);
    dates::check(&mut cx);
    team::check(&mut cx);
    paused::check(&mut cx);
    let diagnostics = cx.out;
    match zone {
        Some(zone) if !diagnostics.iter().any(Diagnostic::is_error) => {
            Ok(CheckedSpec::new(spec, zone, diagnostics, forks))
        }
        _ => Err(Report::new(String::new(), diagnostics)),
    }
}

/// The validation context: the spec and the diagnostics found so far.
pub(crate) struct Cx<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) out: Vec<Diagnostic>,
}

pub(crate) fn root() -> Path {
    Path::root()
}

pub(crate) fn node_path(id: &NodeId) -> Path {
    root().key("nodes").key(id.as_str())
}

impl Cx<'_> {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.out.push(d);
    }

    /// Reports `id` unless it names a defined item; `what` names the kind (`role`), `section`
    /// the top-level key that defines them, `exists` whether `id` is defined.
    #[allow(clippy::too_many_arguments)]
    fn reference<'k>(
        &mut self,
        code: Code,
        what: &str,
        section: &str,
        id: &str,
        exists: bool,
        known: impl Iterator<Item = &'k str> + Clone,
        path: impl FnOnce() -> Path,
    ) {
        if exists {
            return;
        }
        // Suggestions cost a distance per candidate: a flood of bad references gets lists.
        let suggestion = if self.out.len() < MAX_SUGGESTIONS { suggest::help(id, known.clone()) } else { None };
        let help = suggestion.unwrap_or_else(|| format!("`{section}` defines {}", suggest::list(known)));
        self.push(
            Diagnostic::error(code, format!("unknown {what} `{id}`"))
                .at_path(path())
                .label(format!("no {what} `{id}` in `{section}`"))
                .help(help),
        );
    }

    pub(crate) fn node_ref(&mut self, id: &NodeId, path: impl FnOnce() -> Path) {
        let exists = self.spec.nodes.contains_key(id);
        let known = self.spec.nodes.keys().map(NodeId::as_str);
        self.reference(Code::UnknownNode, "node", "nodes", id.as_str(), exists, known, path);
    }

    pub(crate) fn role_ref(&mut self, id: &str, path: impl FnOnce() -> Path) {
        let exists = self.spec.roles.contains_key(id);
        let known = self.spec.roles.keys().map(|k| k.as_str());
        self.reference(Code::UnknownRole, "role", "roles", id, exists, known, path);
    }

    pub(crate) fn channel_ref(&mut self, id: &str, path: impl FnOnce() -> Path) {
        let exists = self.spec.channels.contains_key(id);
        let known = self.spec.channels.keys().map(|k| k.as_str());
        self.reference(Code::UnknownChannel, "channel", "channels", id, exists, known, path);
    }

    pub(crate) fn branch_ref(&mut self, id: &str, path: impl FnOnce() -> Path) {
        let exists = self.spec.branches.contains_key(id);
        let known = self.spec.branches.keys().map(|k| k.as_str());
        self.reference(Code::UnknownBranch, "branch", "branches", id, exists, known, path);
    }

    pub(crate) fn environment_ref(&mut self, id: &str, path: impl FnOnce() -> Path) {
        let exists = self.spec.environments.contains_key(id);
        let known = self.spec.environments.keys().map(|k| k.as_str());
        self.reference(Code::UnknownEnvironment, "environment", "environments", id, exists, known, path);
    }

    pub(crate) fn recipients(&mut self, to: &[Recipient], path: &Path) {
        for (i, recipient) in to.iter().enumerate() {
            match recipient {
                Recipient::Channel(c) => self.channel_ref(c.as_str(), || path.clone().index(i).key("channel")),
                Recipient::Role(r) => self.role_ref(r.as_str(), || path.clone().index(i).key("role")),
            }
        }
    }

    /// Reports an empty or blank text.
    pub(crate) fn non_empty(&mut self, text: &str, what: impl std::fmt::Display, path: impl FnOnce() -> Path) {
        if text.trim().is_empty() {
            self.push(
                Diagnostic::error(Code::EmptyText, format!("{what} is empty"))
                    .at_path(path())
                    .label("write some text here"),
            );
        }
    }

    /// Reports unknown placeholders and unclosed braces in a message template.
    pub(crate) fn template(&mut self, message: &str, path: Path) {
        self.non_empty(message, "the message", || path.clone());
        let mut rest = message;
        while let Some(open) = rest.find('{') {
            let after = rest.get(open + 1..).unwrap_or("");
            let Some(close) = after.find('}') else {
                self.push(
                    Diagnostic::error(Code::Template, "the message has a `{` that is never closed")
                        .at_path(path)
                        .help(format!("placeholders are {}", placeholder_list())),
                );
                return;
            };
            let name = after.get(..close).unwrap_or("");
            if !PLACEHOLDERS.contains(&name) {
                let help = suggest::did_you_mean(name, PLACEHOLDERS.iter().copied()).map_or_else(
                    || format!("placeholders are {}", placeholder_list()),
                    |p| format!("did you mean `{{{p}}}`?"),
                );
                self.push(
                    Diagnostic::error(Code::Template, format!("unknown placeholder `{{{name}}}` in the message"))
                        .at_path(path.clone())
                        .help(help),
                );
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
    }

    /// The roster: roles exist, logins are valid and nobody shares one.
    fn team(&mut self) {
        let spec = self.spec;
        let mut owners: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (person, p) in &spec.team {
            let path = root().key("team").key(person.as_str());
            for (i, role) in p.roles.iter().enumerate() {
                self.role_ref(role.as_str(), || path.clone().key("roles").index(i));
            }
            for (i, login) in p.logins.iter().enumerate() {
                let at = path.clone().key("logins").index(i);
                if !is_login(login) {
                    self.push(
                        Diagnostic::error(Code::Login, format!("`{}` is not a login name", login.escape_debug()))
                            .at_path(at)
                            .help("a login is 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `-`, as `id -un` prints it"),
                    );
                } else if let Some(other) = owners.insert(login.as_str(), person.as_str()) {
                    self.push(
                        Diagnostic::error(
                            Code::Login,
                            format!("login `{login}` is listed for `{other}` and `{person}`"),
                        )
                        .at_path(at)
                        .help("a login identifies one person: keep it on one roster entry"),
                    );
                }
            }
        }
        for forge in [Forge::GitHub, Forge::GitLab] {
            self.forge_logins(forge);
        }
        for (i, role) in spec.team_managed_by.iter().enumerate() {
            self.role_ref(role.as_str(), || root().key("team_managed_by").index(i));
        }
    }

    /// The team's logins on one forge: valid, and nobody shares one (forges compare logins
    /// without case).
    fn forge_logins(&mut self, forge: Forge) {
        let mut owners: HashMap<String, &str> = HashMap::new();
        for (person, p) in &self.spec.team {
            let Some(login) = forge.login(p) else { continue };
            let at = root().key("team").key(person.as_str()).key(forge.key());
            if !is_forge_login(login) {
                self.push(
                    Diagnostic::error(
                        Code::ForgeLogin,
                        format!("`{}` is not a {} login", login.escape_debug(), forge.title()),
                    )
                    .at_path(at)
                    .help("a forge login is 1 to 255 of `A-Z a-z 0-9 . _ -`, not starting with `-` or `.`, as the forge shows it on the person's profile"),
                );
            } else if let Some(other) = owners.insert(login.to_ascii_lowercase(), person.as_str()) {
                self.push(
                    Diagnostic::error(
                        Code::ForgeLogin,
                        format!("{} login `{login}` is listed for `{other}` and `{person}`", forge.title()),
                    )
                    .at_path(at)
                    .help("a forge login identifies one person (the forge ignores case): keep it on one roster entry"),
                );
            }
        }
    }

    /// Version, zone, team, branches, environments, windows and phases. Returns the zone.
    fn sections(&mut self) -> Option<Tz> {
        let spec = self.spec;
        if spec.version != FORMAT_VERSION {
            self.push(
                Diagnostic::error(Code::Version, format!("unsupported spec format version {}", spec.version))
                    .at_path(root().key("version"))
                    .label(format!("this kars reads version {FORMAT_VERSION}"))
                    .help(format!("write `version: {FORMAT_VERSION}`")),
            );
        }
        self.non_empty(&spec.name, "the workflow `name`", || root().key("name"));
        let zone = self.zone();
        self.team();
        for (role, r) in &spec.roles {
            self.non_empty(&r.title, format_args!("the title of role `{role}`"), || {
                root().key("roles").key(role.as_str()).key("title")
            });
        }
        for (id, channel) in &spec.channels {
            self.non_empty(&channel.name, format_args!("the name of channel `{id}`"), || {
                root().key("channels").key(id.as_str()).key("name")
            });
        }
        self.branches();
        for (id, env) in &spec.environments {
            if let Some(branch) = &env.branch {
                self.branch_ref(branch.as_str(), || root().key("environments").key(id.as_str()).key("branch"));
            }
        }
        self.windows();
        self.phases();
        self.classes();
        zone
    }

    fn zone(&mut self) -> Option<Tz> {
        let name = &self.spec.timezone;
        let path = root().key("timezone");
        match calendar::parse_zone(name) {
            Ok(zone) => {
                if let Some(better) = calendar::fixed_offset_suggestion(name) {
                    self.push(
                        Diagnostic::warning(
                            Code::FixedOffsetZone,
                            format!("`{name}` is a fixed-offset zone: it ignores daylight saving time"),
                        )
                        .at_path(path)
                        .label("gates and deadlines would drift by an hour for half the year")
                        .help(format!("did you mean `{better}`?")),
                    );
                }
                Some(zone)
            }
            Err(e) => {
                let close = || suggest::did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
                let help = e.suggestion.as_deref().or_else(close).map_or_else(
                    || "write an IANA zone name such as `America/Toronto` or `Europe/Berlin`".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                self.push(
                    Diagnostic::error(Code::Zone, format!("`{name}` is not an IANA time zone"))
                        .at_path(path)
                        .label("unknown zone")
                        .help(help),
                );
                None
            }
        }
    }

    fn branches(&mut self) {
        for (id, branch) in &self.spec.branches {
            let path = root().key("branches").key(id.as_str());
            match (&branch.name, &branch.pattern) {
                (Some(_), Some(_)) | (None, None) => self.push(
                    Diagnostic::error(
                        Code::BranchShape,
                        format!("branch `{id}` needs exactly one of `name` and `pattern`"),
                    )
                    .at_key(path)
                    .help("use `name: kars-dev` for one branch or `pattern: \"feature/*\"` for a family"),
                ),
                (Some(name), None) => {
                    self.non_empty(name, format_args!("the name of branch `{id}`"), || path.clone().key("name"));
                    if name.contains('*') {
                        self.push(
                            Diagnostic::error(Code::BranchPattern, format!("branch name `{name}` has a `*`"))
                                .at_path(path.key("name"))
                                .help("a name is one exact branch; write `pattern:` for a family of branches"),
                        );
                    }
                }
                (None, Some(pattern)) => {
                    let stars = pattern.matches('*').count();
                    if stars != 1 {
                        self.push(
                            Diagnostic::error(
                                Code::BranchPattern,
                                format!("branch pattern `{pattern}` has {stars} `*`, it needs exactly one"),
                            )
                            .at_path(path.key("pattern"))
                            .help("write a prefix and one `*`, such as `feature/*`"),
                        );
                    }
                }
            }
        }
    }

    fn windows(&mut self) {
        for (id, window) in &self.spec.windows {
            let path = root().key("windows").key(id.as_str());
            for (edge, key) in [(&window.opens, "opens"), (&window.closes, "closes")] {
                if let WindowEdge::After(node) = edge {
                    self.node_ref(node, || path.clone().key(key).key("after"));
                }
            }
            if let (WindowEdge::On(opens), WindowEdge::On(closes)) = (&window.opens, &window.closes)
                && closes <= opens
            {
                self.push(
                    Diagnostic::error(
                        Code::DatedWindowOrder,
                        format!("window `{id}` closes at `{closes}`, not after it opens at `{opens}`"),
                    )
                    .at_path(path.clone().key("closes").key("on"))
                    .help("a dated window opens once and closes once, later"),
                );
            }
            for (i, b) in window.allow_merges_from.iter().enumerate() {
                self.branch_ref(b.as_str(), || path.clone().key("allow_merges_from").index(i));
            }
            for (i, b) in window.merges_into.iter().enumerate() {
                self.branch_ref(b.as_str(), || path.clone().key("merges_into").index(i));
            }
        }
    }

    fn phases(&mut self) {
        let spec = self.spec;
        let mut home: HashMap<&str, (&str, usize)> = HashMap::new();
        for (phase, p) in &spec.phases {
            let path = root().key("phases").key(phase.as_str());
            if spec.nodes.contains_key(phase.as_str()) {
                self.push(
                    Diagnostic::error(Code::PhaseIdCollision, format!("phase id `{phase}` is also a node id"))
                        .at_key(path.clone())
                        .with_label(Location::key(root().key("nodes").key(phase.as_str())), "the node")
                        .help("mermaid puts subgraph and node ids in one namespace; rename the phase"),
                );
            }
            if let Some(title) = &p.title {
                self.non_empty(title, format_args!("the title of phase `{phase}`"), || path.clone().key("title"));
            }
            for (i, node) in p.nodes.iter().enumerate() {
                let at = path.clone().key("nodes").index(i);
                if !spec.nodes.contains_key(node) {
                    self.node_ref(node, || at);
                    continue;
                }
                if let Some((first, j)) = home.get(node.as_str()) {
                    self.push(
                        Diagnostic::error(
                            Code::NodeInTwoPhases,
                            format!("node `{node}` is in two phases, `{first}` and `{phase}`"),
                        )
                        .at_path(at)
                        .with_label(
                            Location::path(root().key("phases").key(*first).key("nodes").index(*j)),
                            "first listed here",
                        )
                        .help("a mermaid node belongs to one subgraph; remove it from one phase"),
                    );
                } else {
                    home.insert(node.as_str(), (phase.as_str(), i));
                }
            }
        }
        if !spec.phases.is_empty() {
            for id in spec.nodes.keys() {
                if !home.contains_key(id.as_str()) {
                    self.push(
                        Diagnostic::warning(Code::NodeInNoPhase, format!("node `{id}` is in no phase"))
                            .at_key(node_path(id))
                            .help("add it to the `nodes` of a phase, or it is drawn outside every subgraph"),
                    );
                }
            }
        }
    }

    /// Style classes: mermaid can write their styles, and their nodes exist.
    fn classes(&mut self) {
        for (class, c) in &self.spec.classes {
            let path = root().key("classes").key(class.as_str());
            nodes::style_map(self, &c.style, &path);
            for (i, node) in c.nodes.iter().enumerate() {
                self.node_ref(node, || path.clone().key("nodes").index(i));
            }
        }
    }

    fn edges(&mut self) {
        let spec = self.spec;
        let mut seen: HashMap<(&str, &str, Option<&str>), usize> = HashMap::with_capacity(spec.edges.len());
        for (i, edge) in spec.edges.iter().enumerate() {
            // Built only for a diagnostic: most edges have none.
            let path = || root().key("edges").index(i);
            self.node_ref(&edge.from, || path().key("from"));
            self.node_ref(&edge.to, || path().key("to"));
            if let Some(label) = &edge.label {
                self.non_empty(label, "the edge label", || path().key("label"));
            }
            let key = (edge.from.as_str(), edge.to.as_str(), edge.label.as_deref());
            if let Some(first) = seen.get(&key) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateEdge,
                        format!("the edge `{} -> {}` is listed twice", edge.from, edge.to),
                    )
                    .at_path(path())
                    .with_label(Location::path(root().key("edges").index(*first)), "first listed here")
                    .help("remove one of them"),
                );
            } else {
                seen.insert(key, i);
            }
        }
    }
}

fn placeholder_list() -> String {
    PLACEHOLDERS.iter().map(|p| format!("`{{{p}}}`")).collect::<Vec<_>>().join(", ")
}

/// A forge a roster entry can carry a login for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forge {
    GitHub,
    GitLab,
}

impl Forge {
    /// The roster key (`github`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        }
    }

    /// The forge's name (`GitHub`).
    pub(crate) fn title(self) -> &'static str {
        match self {
            Forge::GitHub => "GitHub",
            Forge::GitLab => "GitLab",
        }
    }

    /// The person's login on this forge.
    pub(crate) fn login(self, person: &crate::spec::Person) -> Option<&str> {
        match self {
            Forge::GitHub => person.github.as_deref(),
            Forge::GitLab => person.gitlab.as_deref(),
        }
    }
}

/// Whether `login` can be a GitHub login or a GitLab username: 1 to 255 of `A-Z a-z 0-9 . _ -`,
/// not starting with `-` or `.`.
#[must_use]
pub fn is_forge_login(login: &str) -> bool {
    (1..=255).contains(&login.len())
        && !login.starts_with(['-', '.'])
        && login.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `login` is a portable operating-system login name.
#[must_use]
pub fn is_login(login: &str) -> bool {
    (1..=64).contains(&login.len())
        && !login.starts_with('-')
        && login.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
