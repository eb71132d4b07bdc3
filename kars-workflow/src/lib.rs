//! The kars engine: a deterministic, sans-IO workflow state machine that a Rust service embeds.
//!
//! **Determinism.** An [`Instance`] reads no clock and does no IO; time is always an argument.
//! The same [`Workflow`], the same inputs and the same timestamps give the same state, the same
//! effects (with the same idempotency keys) and the same [`History`], on every run and
//! platform. Wall-clock times of the spec are resolved once, when armed, and recorded, so
//! [`Instance::replay`] rebuilds an equal instance even if the tz database changed since.
//!
//! **Call order.** Start an instance with [`Instance::start`]. Then, in a loop:
//! 1. feed an input: [`Instance::handle_event`] for an event, or [`Instance::handle_timeout`]
//!    when the instant from `poll_timeout` has come (inputs run any timers already due first);
//! 2. drain [`Instance::poll_effect`] until `None` and perform each effect (report the result
//!    of a waiting action with [`Event::ActionResult`]); observers may drain
//!    [`Instance::poll_notice`] too;
//! 3. sleep until [`Instance::poll_timeout`] or the next event, whichever comes first.
//!
//! ```no_run
//! use std::sync::Arc;
//! use chrono::{DateTime, Utc};
//! use kars_workflow::{Effect, Event, Instance, InstanceId, Workflow};
//!
//! /// What a host provides: a clock, a way to wait for events, a way to perform effects.
//! trait Host {
//!     fn now(&self) -> DateTime<Utc>;
//!     /// Waits for an event until `deadline` (forever if `None`); `None` when the time came.
//!     fn next_event(&mut self, deadline: Option<DateTime<Utc>>) -> Option<Event>;
//!     fn perform(&mut self, effect: Effect);
//! }
//!
//! fn run(host: &mut impl Host, yaml: &str) -> Result<(), Box<dyn std::error::Error>> {
//!     let spec = kars_spec::load(yaml, "kars-release.yaml")?;
//!     let workflow = Arc::new(Workflow::compile(&spec)?);
//!     let mut instance = Instance::start(workflow, InstanceId::new("kars")?, host.now());
//!     loop {
//!         while let Some(effect) = instance.poll_effect() {
//!             host.perform(effect);
//!         }
//!         match host.next_event(instance.poll_timeout()) {
//!             Some(event) => {
//!                 if let Err(refused) = instance.handle_event(event, host.now()) {
//!                     eprintln!("refused: {refused}");
//!                 }
//!             }
//!             None => instance.handle_timeout(host.now()),
//!         }
//!     }
//! }
//! ```
//!
//! Nothing here panics on any input sequence: refused events return an [`EngineError`] and are
//! kept in the history as refused attempts, changing no state.
#![deny(missing_docs)]

pub mod adapter;
pub mod driver;
mod effect;
mod error;
mod event;
pub mod gate;
mod history;
mod instance;
pub mod journal;
mod policy;
pub mod requirements;
#[cfg(feature = "tokio")]
pub mod service;
mod shared;
pub mod sim;
mod template;
mod words;
#[cfg(feature = "postgres")]
pub mod worker;
mod workflow;

pub use effect::{Effect, EffectKey, EffectKind, Notice, NoticeKind, ReleaseId};
pub use error::{CompileError, EngineError, Expecting, Forbidden, Mismatch};
pub use event::{
    ActionOutcome, ActionOutcomeError, Actor, Event, InstanceId, InstanceIdError, InstanceIdRule, MAX_INSTANCE_ID_LEN,
    MergeRequest, Reporter,
};
pub use history::{
    BranchEvent, CancelReason, History, HistoryError, HistoryHeader, Input, Record, Records, Resolved, Verdict,
};
pub use instance::{
    BranchWaiting, CycleReport, DeadlineView, Footprint, Instance, Options, Snapshot, State, UpgradeBlocker,
    UpgradePlan, UpgradeWhen, Waiting, WaitingFor,
};
pub use kars_spec::spec::Recipient;
pub use policy::Permission;
pub use requirements::{CheckState, MergeEvidence, Unmet};
pub use words::{EffectWords, NoticeWords, local_time};
pub use workflow::{LabelIndex, MAX_NODES, MAX_WINDOWS, NodeIndex, WindowIndex, Workflow};
