//! The team roster: who holds which role, and which operating-system and forge logins are
//! theirs. The
//! host (not the person acting) says who someone is; the roster turns that into an [`Actor`].
//!
//! An instance's roster is fixed when it starts (the spec's `team:`, or a team file given to
//! the start) and journaled; it changes afterwards only by a journaled
//! [`RosterChange`](super::RosterChange) made by a holder of a role the spec's
//! `team_managed_by` names.

use indexmap::IndexMap;
use kars_spec::spec::Spec;
use kars_spec::{PersonId, RoleId};
use serde::{Deserialize, Serialize};

use crate::event::Actor;

/// Why a roster cannot be built or a name resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The team file is not a YAML map from people to roles.
    #[error(
        "{origin}: {detail}\nhelp: a team file maps each person to their roles (`alice: [developer]`) or to an entry like the spec's `team:` (`alice: {{ roles: [developer], logins: [alice] }}`)"
    )]
    Parse {
        /// The file.
        origin: String,
        /// What is wrong, from the parser.
        detail: String,
    },
    /// A person holds a role the spec does not declare.
    #[error(
        "{origin}: `{person}` holds role `{role}`, which the spec does not declare\nhelp: the spec's roles are {known}"
    )]
    UnknownRole {
        /// The file.
        origin: String,
        /// The person.
        person: PersonId,
        /// The undeclared role.
        role: RoleId,
        /// The declared roles, in backticks.
        known: String,
    },
    /// A login is not a login name, or is listed for two people.
    #[error("{origin}: {problem}\nhelp: a login is 1 to 64 of `A-Z a-z 0-9 . _ -` and identifies one person")]
    BadLogin {
        /// The file.
        origin: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Nobody of that name is on the roster.
    #[error("`{name}` is not on the team roster\nhelp: the people on the roster are {known}")]
    UnknownActor {
        /// The name given.
        name: String,
        /// The people on the roster, in backticks.
        known: String,
    },
    /// No person on the roster lists the login.
    #[error(
        "login `{login}` is not on the instance's roster\nhelp: a person acts through the logins listed under `logins:` in their roster entry; {known}"
    )]
    UnknownLogin {
        /// The login.
        login: String,
        /// Who lists which logins.
        known: String,
    },
}

/// A person on a roster: their roles and their operating-system logins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The roles the person holds.
    pub roles: Vec<RoleId>,
    /// The logins that are theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logins: Vec<String>,
    /// Their GitHub login: an approving review by it is theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
    /// Their GitLab username: an approval by it is theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<String>,
}

impl Member {
    /// A member from a spec's (or a team file's) roster entry.
    fn of(person: &kars_spec::spec::Person) -> Self {
        Self {
            roles: person.roles.clone(),
            logins: person.logins.clone(),
            github: person.github.clone(),
            gitlab: person.gitlab.clone(),
        }
    }

    /// Their login on `forge`.
    #[must_use]
    pub fn forge_login(&self, forge: Forge) -> Option<&str> {
        match forge {
            Forge::GitHub => self.github.as_deref(),
            Forge::GitLab => self.gitlab.as_deref(),
        }
    }
}

/// A forge whose logins a roster entry can carry (`github:`, `gitlab:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forge {
    /// GitHub (github.com or GitHub Enterprise Server).
    GitHub,
    /// GitLab (gitlab.com or self-managed).
    GitLab,
}

impl Forge {
    /// The roster key: `github` or `gitlab`.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        }
    }
}

/// People, their roles and logins, in roster order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Roster {
    people: IndexMap<PersonId, Member>,
}

/// One entry of a team file: a list of roles, or an entry as in a spec's `team:`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TeamEntry {
    Roles(Vec<RoleId>),
    Person(kars_spec::spec::Person),
}

fn ticks<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<String> = items.map(|s| format!("`{s}`")).collect();
    if list.is_empty() { "(none)".to_owned() } else { list.join(", ") }
}

impl Roster {
    /// The spec's `team:`.
    #[must_use]
    pub fn from_spec(spec: &Spec) -> Self {
        let people = spec.team.iter().map(|(id, p)| (id.clone(), Member::of(p))).collect();
        Self { people }
    }

    /// A team file: a YAML map from each person to a list of roles (`alice: [developer]`) or to
    /// a `{ name, roles, logins }` entry as in a spec's `team:`. Every role must be one of
    /// `spec`'s, every login a login name that no one else lists.
    ///
    /// # Errors
    /// [`RosterError::Parse`] for YAML that is not such a map, [`RosterError::UnknownRole`]
    /// for a role the spec does not declare, [`RosterError::BadLogin`] for a bad or shared login.
    pub fn from_yaml(text: &str, origin: &str, spec: &Spec) -> Result<Self, RosterError> {
        let parsed: IndexMap<PersonId, TeamEntry> = serde_saphyr::from_str(text).map_err(|e| RosterError::Parse {
            origin: origin.to_owned(),
            detail: first_line(&e.to_string()).replace(
                "data did not match any variant of untagged enum TeamEntry",
                "an entry is neither a list of roles nor `{ roles: [...], logins: [...] }`",
            ),
        })?;
        let mut people = IndexMap::with_capacity(parsed.len());
        for (person, entry) in parsed {
            let member = match entry {
                TeamEntry::Roles(roles) => Member { roles, ..Member::default() },
                TeamEntry::Person(p) => Member::of(&p),
            };
            people.insert(person, member);
        }
        let roster = Self { people };
        roster.check(origin, spec)?;
        Ok(roster)
    }

    /// Checks that every role is `spec`'s and every login valid and listed once.
    ///
    /// # Errors
    /// As [`Roster::from_yaml`].
    pub fn check(&self, origin: &str, spec: &Spec) -> Result<(), RosterError> {
        let mut seen: IndexMap<&str, &PersonId> = IndexMap::new();
        for (person, member) in &self.people {
            if let Some(role) = member.roles.iter().find(|r| !spec.roles.contains_key(*r)) {
                return Err(RosterError::UnknownRole {
                    origin: origin.to_owned(),
                    person: person.clone(),
                    role: role.clone(),
                    known: ticks(spec.roles.keys().map(RoleId::as_str)),
                });
            }
            for login in &member.logins {
                let problem = if !kars_spec::is_login(login) {
                    Some(format!("`{}` of `{person}` is not a login name", login.escape_debug()))
                } else {
                    seen.insert(login, person)
                        .map(|other| format!("login `{login}` is listed for `{other}` and `{person}`"))
                };
                if let Some(problem) = problem {
                    return Err(RosterError::BadLogin { origin: origin.to_owned(), problem });
                }
            }
        }
        for forge in [Forge::GitHub, Forge::GitLab] {
            let mut owners: IndexMap<String, &PersonId> = IndexMap::new();
            for (person, member) in &self.people {
                let Some(login) = member.forge_login(forge) else { continue };
                let problem = if !kars_spec::is_forge_login(login) {
                    Some(format!("`{}` of `{person}` is not a {} login", login.escape_debug(), forge.key()))
                } else {
                    owners
                        .insert(login.to_ascii_lowercase(), person)
                        .map(|other| format!("{} login `{login}` is listed for `{other}` and `{person}`", forge.key()))
                };
                if let Some(problem) = problem {
                    return Err(RosterError::BadLogin { origin: origin.to_owned(), problem });
                }
            }
        }
        Ok(())
    }

    /// The person whose `github:` (or `gitlab:`) login is `login` (forges ignore case), as an
    /// actor with their roles: who an approving review on the forge is.
    #[must_use]
    pub fn reviewer(&self, forge: Forge, login: &str) -> Option<Actor> {
        self.people
            .iter()
            .find(|(_, m)| m.forge_login(forge).is_some_and(|l| l.eq_ignore_ascii_case(login)))
            .map(|(person, member)| Actor::new(person.as_str(), member.roles.clone()))
    }

    /// The actor called `name`, with the roles the roster gives them.
    ///
    /// # Errors
    /// [`RosterError::UnknownActor`] listing the people on the roster.
    pub fn actor(&self, name: &str) -> Result<Actor, RosterError> {
        match self.people.get(name) {
            Some(member) => Ok(Actor::new(name, member.roles.clone())),
            None => Err(RosterError::UnknownActor {
                name: name.to_owned(),
                known: ticks(self.people.keys().map(PersonId::as_str)),
            }),
        }
    }

    /// The person whose entry lists `login`, as an actor.
    ///
    /// # Errors
    /// [`RosterError::UnknownLogin`] saying who lists which logins.
    pub fn actor_for_login(&self, login: &str) -> Result<Actor, RosterError> {
        let found = self.people.iter().find(|(_, m)| m.logins.iter().any(|l| l == login));
        match found {
            Some((person, member)) => Ok(Actor::new(person.as_str(), member.roles.clone())),
            None => {
                let listed: Vec<String> = self
                    .people
                    .iter()
                    .filter(|(_, m)| !m.logins.is_empty())
                    .map(|(p, m)| format!("`{p}`: {}", ticks(m.logins.iter().map(String::as_str))))
                    .collect();
                let known = if listed.is_empty() {
                    "nobody on this roster lists a login".to_owned()
                } else {
                    format!("the roster lists {}", listed.join("; "))
                };
                Err(RosterError::UnknownLogin { login: login.to_owned(), known })
            }
        }
    }

    /// The people who hold `role`, in roster order.
    #[must_use]
    pub fn holders(&self, role: &RoleId) -> Vec<&PersonId> {
        self.people.iter().filter(|(_, m)| m.roles.contains(role)).map(|(p, _)| p).collect()
    }

    /// Every person and their roles, in roster order.
    pub fn people(&self) -> impl Iterator<Item = (&PersonId, &[RoleId])> {
        self.people.iter().map(|(p, m)| (p, m.roles.as_slice()))
    }

    /// Every person and their entry, in roster order.
    pub fn members(&self) -> impl Iterator<Item = (&PersonId, &Member)> {
        self.people.iter()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let yaml =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
        kars_spec::load(&yaml, "kars-release.yaml").unwrap().into_spec()
    }

    #[test]
    fn the_spec_team_resolves_names_and_logins() {
        let roster = Roster::from_spec(&spec());
        let frank = roster.actor("frank").unwrap();
        assert_eq!(frank.roles().len(), 2);
        let err = roster.actor("mallory").unwrap_err().to_string();
        assert!(err.contains("`alice`, `bob`, `carol`"), "{err}");
        let qa = RoleId::new("qa").unwrap();
        assert_eq!(roster.holders(&qa).len(), 1);
        assert_eq!(roster.actor_for_login("carol").unwrap().name().as_ref(), "carol");
        let err = roster.actor_for_login("mallory").unwrap_err().to_string();
        assert!(err.starts_with("login `mallory` is not on the instance's roster"), "{err}");
    }

    #[test]
    fn team_files_take_both_forms_and_refuse_unknown_roles_and_shared_logins() {
        let spec = spec();
        let roster = Roster::from_yaml(
            "zoe: [qa, devops]\nyann: { name: Yann, roles: [developer], logins: [yann, ci-runner] }\n",
            "team.yaml",
            &spec,
        )
        .unwrap();
        assert_eq!(roster.actor("zoe").unwrap().roles().len(), 2);
        assert_eq!(roster.actor_for_login("ci-runner").unwrap().name().as_ref(), "yann");
        let err = Roster::from_yaml("zoe: [tester]\n", "team.yaml", &spec).unwrap_err().to_string();
        assert!(err.starts_with("team.yaml: `zoe` holds role `tester`"), "{err}");
        let err = Roster::from_yaml("- zoe\n", "team.yaml", &spec).unwrap_err().to_string();
        assert!(!err.contains("untagged enum"), "{err}");
        let err = Roster::from_yaml("zoe: { roles: [qa], extra: 1 }\n", "team.yaml", &spec).unwrap_err().to_string();
        assert!(!err.contains("TeamEntry"), "{err}");
        let forge = "a: { roles: [qa], github: Ann }\nb: { roles: [qa], github: ann }\n";
        let err = Roster::from_yaml(forge, "team.yaml", &spec).unwrap_err().to_string();
        assert!(err.contains("github login `ann` is listed for `a` and `b`"), "{err}");
        let roster =
            Roster::from_yaml("a: { roles: [qa], github: Ann, gitlab: ann-gl }\n", "team.yaml", &spec).unwrap();
        assert_eq!(roster.reviewer(Forge::GitHub, "ann").map(|a| a.name().to_string()), Some("a".to_owned()));
        assert_eq!(roster.reviewer(Forge::GitLab, "ann-gl").map(|a| a.roles().len()), Some(1));
        assert_eq!(roster.reviewer(Forge::GitLab, "Ann"), None);
        let shared = "a: { roles: [qa], logins: [x] }\nb: { roles: [qa], logins: [x] }\n";
        let err = Roster::from_yaml(shared, "team.yaml", &spec).unwrap_err().to_string();
        assert!(err.contains("login `x` is listed for `a` and `b`"), "{err}");
    }
}
