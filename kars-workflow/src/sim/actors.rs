//! The simulated team: people and their roles, from the spec's roster or made up per role.

use kars_spec::spec::Spec;
use kars_spec::{PersonId, RoleId};

use super::rng::SimRng;
use crate::event::Actor;

/// One simulated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub(crate) actor: Actor,
}

/// Everyone who may act in a simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Team {
    pub(crate) people: Vec<Person>,
}

impl Team {
    /// The spec's roster; every role nobody holds gets a made-up `role-1` person, so each task
    /// can be done.
    pub(crate) fn from_spec(spec: &Spec) -> Team {
        let mut people: Vec<Person> = spec
            .team
            .iter()
            .map(|(id, p): (&PersonId, _)| Person { actor: Actor::new(id.as_str(), p.roles.clone()) })
            .collect();
        let mut roles: Vec<&RoleId> = spec.roles.keys().collect();
        for node in spec.nodes.values() {
            roles.extend(node.roles.iter());
            if let Some(role) = node.decided_by.as_ref().and_then(|d| d.role.as_ref()) {
                roles.push(role);
            }
        }
        for role in roles {
            if !people.iter().any(|p| p.actor.roles().contains(role)) {
                people.push(Person { actor: Actor::new(format!("{role}-1"), vec![role.clone()]) });
            }
        }
        Team { people }
    }

    /// A person who holds one of `roles` and is not in `exclude`, picked at random.
    pub(crate) fn pick(&self, roles: &[RoleId], exclude: &[&str], rng: &mut SimRng) -> Option<usize> {
        let fits = |p: &Person| {
            p.actor.roles().iter().any(|r| roles.contains(r)) && !exclude.contains(&p.actor.name().as_ref())
        };
        let count = self.people.iter().filter(|p| fits(p)).count();
        if count == 0 {
            return None;
        }
        let pick = rng.range_u32(0, u32::try_from(count - 1).unwrap_or(0)) as usize;
        self.people.iter().enumerate().filter(|(_, p)| fits(p)).nth(pick).map(|(i, _)| i)
    }

    /// Anyone not in `exclude`, picked at random.
    pub(crate) fn pick_any(&self, exclude: &[&str], rng: &mut SimRng) -> Option<usize> {
        let fits = |p: &Person| !exclude.contains(&p.actor.name().as_ref());
        let count = self.people.iter().filter(|p| fits(p)).count();
        if count == 0 {
            return None;
        }
        let pick = rng.range_u32(0, u32::try_from(count - 1).unwrap_or(0)) as usize;
        self.people.iter().enumerate().filter(|(_, p)| fits(p)).nth(pick).map(|(i, _)| i)
    }

    /// A person who holds none of `roles`, picked at random.
    pub(crate) fn outsider(&self, roles: &[RoleId], rng: &mut SimRng) -> Option<usize> {
        let fits = |p: &Person| !p.actor.roles().iter().any(|r| roles.contains(r));
        let count = self.people.iter().filter(|p| fits(p)).count();
        if count == 0 {
            return None;
        }
        let pick = rng.range_u32(0, u32::try_from(count - 1).unwrap_or(0)) as usize;
        self.people.iter().enumerate().filter(|(_, p)| fits(p)).nth(pick).map(|(i, _)| i)
    }
}
