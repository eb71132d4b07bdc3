//! The kars workflow spec: a YAML format that mirrors a mermaid flowchart and adds its meaning.
//!
//! What this crate guarantees: a [`CheckedSpec`] can only be obtained through [`load`] or
//! [`check`], so code that holds one knows the YAML parsed within its budgets, every id is
//! valid and resolves, the graph passed every validation rule and the time zone exists. Bad
//! input of any kind gives an error that names the file, line and column; nothing here panics,
//! reads a clock or does IO beyond the string it is given.
//!
//! Problems are [`Diagnostic`]s with stable [`Code`]s (table in `kars-spec/CODES.md`), gathered
//! in a [`Report`] that renders them rustc-style. The loader's limits are documented constants:
//! [`MAX_INPUT_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`], [`MAX_ALIASES`], [`MAX_EXPANDED_BYTES`] and
//! [`MAX_SCALAR_BYTES`].
//!
//! ```
//! let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
//! let spec = kars_spec::load(&yaml, "kars-release.yaml").expect("the bundled spec is valid");
//! assert_eq!(spec.spec().nodes.len(), 33);
//! ```
#![deny(missing_docs)]

pub mod cadence;
pub mod calendar;
pub mod change;
mod checked;
pub mod dates;
pub mod diagnostic;
mod fastpath;
pub mod id;
mod inline_str;
mod load;
mod locate;
pub mod mermaid;
mod schema;
pub mod spec;
mod suggest;
mod textual;
mod validate;

pub use checked::{CheckedSpec, Fingerprint, Fork};
pub use diagnostic::{Code, Diagnostic, Location, Report, Severity};
pub use id::{
    BranchId, ChannelId, ClassId, EnvironmentId, IdError, NodeId, PackedId, PersonId, PhaseId, RoleId, WindowId,
};
pub use inline_str::InlineStr;
pub use load::{MAX_INPUT_BYTES, load_bytes};
pub use locate::{MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_BYTES, MAX_NODES, MAX_SCALAR_BYTES};
pub use schema::json_schema;
pub use spec::Spec;
pub use suggest::did_you_mean;
pub use validate::{PLACEHOLDERS, is_forge_login, is_login};

/// Parses YAML into a [`Spec`] and checks it; `origin` names the source in diagnostics
/// (a file name).
///
/// Every error, syntax or semantic, names `origin`, the line and column and the path in the
/// document, and renders a source excerpt. On success, [`CheckedSpec::warnings`] holds the
/// warnings.
///
/// # Errors
/// Returns a [`Report`] of every problem found: the first YAML or type error if the text does
/// not read as a spec, else every validation error and warning.
pub fn load(source: &str, origin: &str) -> Result<CheckedSpec, Report> {
    load::load_str(source, origin)
}

/// Checks a [`Spec`] that was built in code or imported. Diagnostics carry paths in the
/// document (`nodes.N.decided_by.role`) but no lines, since there is no source.
///
/// # Errors
/// Returns a [`Report`] of every error and warning when any rule fails.
pub fn check(spec: Spec) -> Result<CheckedSpec, Report> {
    validate::validate(spec)
}
