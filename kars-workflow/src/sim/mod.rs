//! The simulator: runs a workflow on a virtual clock for weeks, with seeded actors.

pub mod hours;
pub mod model;
pub mod rng;
