//! The kars engine (being built).
#![deny(missing_docs)]

pub mod adapter;
pub mod journal;
pub mod sim;
