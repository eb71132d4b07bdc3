//! Adapters: the outside world's side of effects — notifications and version control.
//!
//! The engine emits effects; the driver (the only caller of adapters) performs each one through
//! a [`Notifier`] or a [`Vcs`] and reports the result back as an event. Every effectful call
//! carries the effect's *idempotency key*, stable across restarts: after a crash the driver
//! replays effects whose results it had not journaled, and an adapter that sees a key again
//! drops the duplicate (the git adapter returns its recorded result; a webhook sends the key
//! as an `Idempotency-Key` header). Reads (`head`, `review_state`) have no side effect and
//! carry no key.
//!
//! Failures are [`AdapterError::Transient`] (the driver retries with bounded backoff: timeouts,
//! 5xx, a ref that moved under us), [`AdapterError::Throttled`] (transient, and the service
//! said how long to wait: a rate limit) or [`AdapterError::Permanent`] (the driver turns it into a
//! failure event: a missing branch, a merge conflict, a 4xx).
//!
//! # Sync, not async
//!
//! The traits are synchronous (`&self` methods, no futures). The engine is sans-IO, the journal
//! is file IO, the git adapter runs a process and the webhook uses a blocking HTTP client, so a
//! synchronous driver is the simplest correct loop; an async host (tokio, async-std) runs the
//! driver with `spawn_blocking` or on a dedicated thread, and an adapter built on an async
//! client implements these traits by blocking on its runtime's handle. Async traits
//! (`async fn` in traits) would force every host, sync or not, to bring an executor, and their
//! futures' `Send`-ness cannot yet be stated in a stable trait without boxing. Adapters take
//! `&self` so one instance can be shared; implementations use interior mutability.
//!
//! Bundled: [`ConsoleNotifier`], `WebhookNotifier` (cargo feature `webhook`), [`GitVcs`], the
//! GitHub and GitLab adapters of `forge` (cargo feature `forge`), and the test fakes
//! [`RecordingNotifier`] and [`RecordingVcs`].
//!
//! ```
//! use kars_workflow::adapter::{Audience, FailurePlan, Notification, Notifier, RecordingNotifier};
//!
//! let notifier = RecordingNotifier::with_failures(FailurePlan::transient(1));
//! let n = Notification {
//!     key: "kars-release/2026-W48/S".into(),
//!     to: Audience::Channel("#kars-releases".into()),
//!     message: "2026-W48 is approved".into(),
//! };
//! assert!(notifier.notify(&n).unwrap_err().is_transient()); // the driver retries
//! notifier.notify(&n)?;
//! notifier.notify(&n)?; // a replay after a crash: dropped
//! assert_eq!(notifier.delivered().len(), 1);
//! # Ok::<(), kars_workflow::adapter::AdapterError>(())
//! ```

mod console;
mod error;
mod fake;
#[cfg(feature = "forge")]
pub mod forge;
mod git;
mod notifier;
mod vcs;
#[cfg(feature = "webhook")]
mod webhook;

pub use console::ConsoleNotifier;
pub use error::AdapterError;
pub use fake::{FailurePlan, RecordedCall, RecordingNotifier, RecordingVcs};
pub use git::GitVcs;
pub use notifier::{Audience, Notification, Notifier};
pub use vcs::{BranchHead, BranchSelector, MergeOutcome, MergeRequest, OpenPullRequest, PullRequest, ReviewState, Vcs};
#[cfg(feature = "webhook")]
pub use webhook::WebhookNotifier;
