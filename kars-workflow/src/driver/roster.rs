//! The team roster: who holds which role. The host (not the person acting) says who someone
//! is; the roster turns a name into an [`Actor`] with the roles the spec or a team file gives.

use indexmap::IndexMap;
use kars_spec::spec::{Person, Spec};
use kars_spec::{PersonId, RoleId};
use serde::Deserialize;

use crate::event::Actor;

/// Why a roster cannot be built or a name resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The team file is not a YAML map from people to roles.
    #[error("{origin}: {detail}\nhelp: a team file maps each person to their roles, e.g. `alice: [developer]`")]
    Parse {
        /// The file.
        origin: String,
        /// What the parser said.
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
    /// Nobody of that name is on the roster.
    #[error("`{name}` is not on the team roster\nhelp: the people on the roster are {known}")]
    UnknownActor {
        /// The name given.
        name: String,
        /// The people on the roster, in backticks.
        known: String,
    },
}

/// People and their roles, in roster order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    people: IndexMap<PersonId, Vec<RoleId>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Roles(Vec<RoleId>),
    Person(Person),
}

fn ticks<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<String> = items.map(|s| format!("`{s}`")).collect();
    if list.is_empty() { "(none)".to_owned() } else { list.join(", ") }
}

impl Roster {
    /// The spec's `team:`.
    #[must_use]
    pub fn from_spec(spec: &Spec) -> Self {
        Self { people: spec.team.iter().map(|(id, p)| (id.clone(), p.roles.clone())).collect() }
    }

    /// A team file: a YAML map from each person to a list of roles (`alice: [developer]`) or to
    /// a `{ name, roles }` entry as in a spec's `team:`. Every role must be one of `spec`'s.
    ///
    /// # Errors
    /// [`RosterError::Parse`] for YAML that is not such a map, [`RosterError::UnknownRole`]
    /// for a role the spec does not declare.
    pub fn from_yaml(text: &str, origin: &str, spec: &Spec) -> Result<Self, RosterError> {
        let parsed: IndexMap<PersonId, Entry> = serde_saphyr::from_str(text)
            .map_err(|e| RosterError::Parse { origin: origin.to_owned(), detail: e.to_string() })?;
        let mut people = IndexMap::with_capacity(parsed.len());
        for (person, entry) in parsed {
            let roles = match entry {
                Entry::Roles(roles) => roles,
                Entry::Person(p) => p.roles,
            };
            if let Some(role) = roles.iter().find(|r| !spec.roles.contains_key(*r)) {
                return Err(RosterError::UnknownRole {
                    origin: origin.to_owned(),
                    person,
                    role: role.clone(),
                    known: ticks(spec.roles.keys().map(RoleId::as_str)),
                });
            }
            people.insert(person, roles);
        }
        Ok(Self { people })
    }

    /// The actor called `name`, with the roles the roster gives them.
    ///
    /// # Errors
    /// [`RosterError::UnknownActor`] listing the people on the roster.
    pub fn actor(&self, name: &str) -> Result<Actor, RosterError> {
        match self.people.get(name) {
            Some(roles) => Ok(Actor::new(name, roles.clone())),
            None => Err(RosterError::UnknownActor {
                name: name.to_owned(),
                known: ticks(self.people.keys().map(PersonId::as_str)),
            }),
        }
    }

    /// The people who hold `role`, in roster order.
    #[must_use]
    pub fn holders(&self, role: &RoleId) -> Vec<&PersonId> {
        self.people.iter().filter(|(_, roles)| roles.contains(role)).map(|(p, _)| p).collect()
    }

    /// Every person and their roles, in roster order.
    pub fn people(&self) -> impl Iterator<Item = (&PersonId, &[RoleId])> {
        self.people.iter().map(|(p, r)| (p, r.as_slice()))
    }
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
    fn the_spec_team_resolves_names() {
        let roster = Roster::from_spec(&spec());
        let frank = roster.actor("frank").unwrap();
        assert_eq!(frank.roles.len(), 2);
        let err = roster.actor("mallory").unwrap_err().to_string();
        assert!(err.contains("`alice`, `bob`, `carol`"), "{err}");
        let qa = RoleId::new("qa").unwrap();
        assert_eq!(roster.holders(&qa).len(), 1);
    }

    #[test]
    fn team_files_take_both_forms_and_refuse_unknown_roles() {
        let spec = spec();
        let roster =
            Roster::from_yaml("zoe: [qa, devops]\nyann: { name: Yann, roles: [developer] }\n", "team.yaml", &spec)
                .unwrap();
        assert_eq!(roster.actor("zoe").unwrap().roles.len(), 2);
        assert_eq!(roster.actor("yann").unwrap().roles.len(), 1);
        let err = Roster::from_yaml("zoe: [tester]\n", "team.yaml", &spec).unwrap_err().to_string();
        assert!(err.starts_with("team.yaml: `zoe` holds role `tester`"), "{err}");
        assert!(Roster::from_yaml("- zoe\n", "team.yaml", &spec).is_err());
        assert!(Roster::from_yaml("zoe: { roles: [qa], extra: 1 }\n", "team.yaml", &spec).is_err());
    }
}
