//! The simulator: runs a workflow on a virtual clock for weeks, with seeded people.
//!
//! Same spec, model, seed and start date: the same run, byte for byte. People work in working
//! hours ([`hours::WorkingHours`]), take durations from [`model::Model`], sometimes fail tests,
//! finish late or try work their role does not allow; automatic actions report results after a
//! while and sometimes fail; a merge bot tries merges at random times and the instance's
//! windows decide which land. See [`simulate`]; [`expect`] checks what must hold over runs of
//! several seeds (`kars simulate FILE --expect`).

mod actors;
pub mod expect;
pub mod hours;
pub mod model;
mod report;
pub mod rng;
mod run;
mod yaml;

pub use model::{Model, ModelError, ModelFile};
pub use report::{Entry, EntryKind, Observer, Stats, Summary, WeekReport};
pub use run::{SimConfig, SimError, SimHistory, SimRun, simulate};
