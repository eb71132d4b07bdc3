//! kars: an embeddable workflow engine with a declarative YAML spec.
//!
//! This crate re-exports [`kars_spec`] (the spec format, loader, validator and mermaid) and
//! [`kars_workflow`] (the deterministic engine, driver, journal and simulator), and hosts the
//! `kars` command line behind the default `cli` feature. With the `testing` feature,
//! `kars::testing` offers proptest strategies and helpers for property tests of your own workflow;
//! with the `serve` feature, `kars::serve` is the HTTP service behind `kars serve`.
#![deny(missing_docs)]

pub use kars_spec as spec;
pub use kars_workflow as workflow;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "serve")]
pub mod serve;

/// The README's examples, compiled and run as doctests so that they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
