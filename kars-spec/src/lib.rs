//! The kars workflow spec: a YAML format that mirrors a mermaid flowchart and adds its meaning.
//!
//! What this crate guarantees: a [`CheckedSpec`] can only be obtained through [`load`] or
//! [`check`], so code that holds one knows the YAML parsed within its budgets, every id is
//! valid and resolves, the graph passed every validation rule and the time zone exists. Bad
//! input of any kind gives an error that names the file, line and column; nothing here panics,
//! reads a clock or does IO beyond the string it is given.
//!
//! ```
//! let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
//! let spec = kars_spec::load(&yaml, "kars-release.yaml").expect("the bundled spec is valid");
//! assert_eq!(spec.spec().nodes.len(), 33);
//! ```
#![deny(missing_docs)]

pub mod calendar;
mod checked;
pub mod id;
pub mod mermaid;
pub mod spec;

pub use checked::{CheckedSpec, Fingerprint};
pub use id::{BranchId, ChannelId, EnvironmentId, IdError, NodeId, PersonId, PhaseId, RoleId, WindowId};
pub use spec::Spec;

/// A problem found while loading or checking a spec (first version; the loader issue refines it).
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct Report {
    origin: String,
    message: String,
}

/// Parses YAML into a [`Spec`] and checks it.
///
/// # Errors
/// Returns a [`Report`] of every problem found.
pub fn load(source: &str, origin: &str) -> Result<CheckedSpec, Report> {
    let spec: Spec =
        serde_saphyr::from_str(source).map_err(|e| Report { origin: origin.to_owned(), message: e.to_string() })?;
    check(spec).map_err(|mut r| {
        r.origin = origin.to_owned();
        r
    })
}

/// Checks a [`Spec`] that was built in code or imported.
///
/// # Errors
/// Returns a [`Report`] of every problem found.
pub fn check(spec: Spec) -> Result<CheckedSpec, Report> {
    let zone =
        calendar::parse_zone(&spec.timezone).map_err(|e| Report { origin: String::new(), message: e.to_string() })?;
    Ok(CheckedSpec::new(spec, zone))
}
