//! A running instance of a workflow: the sans-IO state machine.
//!
//! `mod.rs` holds the type and its public entry points; `step.rs` the transitions, `input.rs`
//! the checks on events, `query.rs` the read-only questions ("why blocked?", "may I merge?"),
//! and `replay.rs` replay, snapshots and the recorded instants.

mod branch;
mod input;
mod query;
mod remap;
mod replay;
mod state;
mod step;
pub(crate) mod upgrade;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::effect::{Effect, EffectKey, Notice, NoticeKind};
use crate::error::EngineError;
use crate::event::{Event, InstanceId};
use crate::history::{History, HistoryHeader, Input, Verdict};
use crate::workflow::Workflow;
use kars_spec::Fingerprint;

pub use query::{BranchWaiting, CycleReport, DeadlineView, Waiting, WaitingFor};
pub(crate) use state::Stamp;
pub use state::State;
pub use upgrade::{UpgradeBlocker, UpgradePlan, UpgradeWhen};

/// One instance of a workflow: a token moving through weekly cycles (several, one per branch,
/// while a `parallel` node's branches run).
///
/// It reads no clock and does no IO. Inputs are [`Instance::handle_event`] and
/// [`Instance::handle_timeout`]; outputs are [`Instance::poll_effect`],
/// [`Instance::poll_timeout`] and, for observers, [`Instance::poll_notice`]. Equality compares
/// the [`State`] and the [`History`] (not the undrained effect and notice queues).
#[derive(Debug, Clone)]
// Laid out by use (see `State`): the kept earliest deadline and the state's fields every input
// reads come first and the history's tables, the instance's own fields and the effect queue
// last, so that the cold parts (the state's per-cycle fields, the history's header) lie
// together between them.
#[repr(C)]
pub struct Instance {
    /// The earliest deadline still to fire (`step::earliest_deadline`), kept as the
    /// deadlines and completed nodes change so that the next timer is found without walking
    /// them on every input. First, beside the state's token and clock: every input reads it.
    deadline_wake: Option<DateTime<Utc>>,
    state: State,
    /// The specs an upgrade moves between (boxed: an instance that never upgrades pays one
    /// pointer).
    moves: Option<Box<SpecMoves>>,
    history: History,
    workflow: Arc<Workflow>,
    effects: VecDeque<Effect>,
    /// Allocated only when notices are on.
    notices: Option<Box<Notices>>,
    /// While replaying: the instants recorded for the current input, in order.
    replay: Option<Box<replay::Cursor>>,
    /// The running cycle's release id (of `state.monday`), shared by its effects.
    release: crate::effect::ReleaseId,
    /// `{instance}/{release}/`: what the running cycle's effect keys start with.
    key_prefix: EffectKey,
}

/// The specs an upgrade moves between.
#[derive(Debug, Clone, Default)]
struct SpecMoves {
    /// The spec that takes effect when the next cycle starts ([`Instance::upgrade`]).
    upcoming: Option<Arc<Workflow>>,
    /// The spec a cycle start moved away from ([`Instance::take_upcoming`]), kept until the
    /// input that took it returns ([`Instance::settle_spec`]), so that a borrow
    /// [`Instance::with_spec`] handed out stays valid.
    retired: Option<Arc<Workflow>>,
}

impl PartialEq for Instance {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state && self.history == other.history
    }
}

/// The notice queue, boxed so that an instance without observers pays one pointer.
#[derive(Debug, Clone, Default)]
struct Notices {
    queue: VecDeque<Notice>,
    capacity: usize,
    dropped: u64,
}

impl Notices {
    fn new(capacity: usize) -> Option<Box<Self>> {
        (capacity > 0)
            .then(|| Box::new(Self { queue: VecDeque::with_capacity(capacity.min(256)), capacity, dropped: 0 }))
    }
}

/// Options for [`Instance::start_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// How many undrained notices to keep (see [`Instance::set_notice_capacity`]); 0 turns
    /// notices off.
    pub notice_capacity: usize,
}

/// A serializable copy of an instance: its state, its history and the effects not yet polled.
///
/// The history is what the instance holds: after [`Instance::release_history`] only the
/// records from [`History::first_seq`] on (the rest lives in the host's store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    state: State,
    history: History,
    pending_effects: Vec<Effect>,
}

impl Snapshot {
    /// The history inside the snapshot.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }
}

/// How much memory an instance holds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// `size_of::<Instance>()`.
    pub inline: usize,
    /// Heap held by the state's tables and the notice queue (not the history or undrained effects).
    pub state_heap: usize,
    /// Of `inline`, the part that is the history's header and record list.
    pub history_inline: usize,
    /// Heap held by the history's records (an estimate: record sizes plus their strings).
    pub history_heap: usize,
}

impl Footprint {
    /// The instance without its history: `inline - history_inline + state_heap`.
    #[must_use]
    pub fn without_history(&self) -> usize {
        self.inline - self.history_inline + self.state_heap
    }
}

impl Instance {
    /// Starts an instance: its first cycle is the ISO week of `now` (the local date in the
    /// workflow's zone) and starts at `now`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kars_workflow::{Actor, EngineError, Event, Instance, InstanceId, Workflow};
    ///
    /// let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml"))?;
    /// let workflow = Arc::new(Workflow::compile(&kars_spec::load(&yaml, "kars-release.yaml")?)?);
    /// let monday = "2026-11-23T13:00:00Z".parse()?; // 08:00 in Toronto
    /// let mut kars = Instance::start(workflow, InstanceId::new("kars")?, monday);
    /// assert_eq!(kars.release().as_str(), "2026-W48");
    ///
    /// let planning = |who: &str, role: &str| Event::Complete {
    ///     node: "B".parse().unwrap(),
    ///     actor: Actor::new(who, vec![role.parse().unwrap()]),
    ///     outcome: None,
    /// };
    /// let refused = kars.handle_event(planning("alice", "developer"), monday);
    /// assert!(matches!(refused, Err(EngineError::Unauthorized { .. })));
    /// kars.handle_event(planning("erin", "product_manager"), monday)?;
    /// assert_eq!(kars.current_node().map(|n| n.as_str()), Some("C"));
    /// assert_eq!(kars.history().len(), 3); // the start, the refusal, the completion
    /// println!("{}", kars.waiting(monday)); // 2026-W48: task `C` waits for one of the roles `team_lead`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn start(workflow: Arc<Workflow>, id: InstanceId, now: DateTime<Utc>) -> Self {
        Self::begin(workflow, id, now, None, Options::default())
    }

    /// [`Instance::start`] with options, such as notices from the very first transition.
    #[must_use]
    pub fn start_with(workflow: Arc<Workflow>, id: InstanceId, now: DateTime<Utc>, options: Options) -> Self {
        Self::begin(workflow, id, now, None, options)
    }

    fn begin(
        workflow: Arc<Workflow>,
        id: InstanceId,
        now: DateTime<Utc>,
        replay: Option<Box<replay::Cursor>>,
        options: Options,
    ) -> Self {
        let now = crate::gate::clamp(now);
        let header = HistoryHeader {
            fingerprint: workflow.fingerprint,
            workflow: Arc::clone(&workflow.name),
            instance: id,
            started_at: now,
        };
        let state = State::new(&workflow, now);
        let release = crate::effect::ReleaseId::of(state.monday);
        let key_prefix = EffectKey::prefix(header.instance.as_str(), release.as_str());
        let mut instance = Self {
            workflow,
            state,
            history: History::new(header),
            effects: VecDeque::new(),
            notices: Notices::new(options.notice_capacity),
            replay,
            moves: None,
            release,
            key_prefix,
            deadline_wake: None,
        };
        instance.refresh_calendar(now);
        match instance.first_start(now) {
            // A longer cadence started in a later week of its cycle waits for the next one.
            Some(next_start) => instance.state.token = state::Token::Between { next_start },
            None => {
                let next = instance.start_cycle(now);
                instance.with_spec(|instance, workflow| instance.run(workflow, next, now));
            }
        }
        instance.push_record(now, Input::Start, Verdict::Accepted);
        instance
    }

    /// Handles an event at `now`. Timers due by `now` run first, each at its own instant.
    /// An instant earlier than the latest accepted one counts as that latest one, and instants
    /// outside years 1000..9000 count as the nearest bound.
    ///
    /// Accepted or refused, the event is appended to the [`History`]; a refused event changes
    /// nothing.
    ///
    /// # Errors
    /// Returns an [`EngineError`] saying why the event is refused: the node is unknown or not
    /// awaiting it, its gate is not open, a window forbids it, the actor lacks the role or
    /// completed a node this one must be kept apart from, or the outcome is not declared.
    pub fn handle_event(&mut self, event: Event, now: DateTime<Utc>) -> Result<(), EngineError> {
        let at = now;
        let now = crate::gate::clamp(now).max(self.state.clock);
        let spec = Arc::as_ptr(&self.workflow);
        self.catch_up(now);
        let applied = self.apply(&event, now);
        self.settle_spec(spec);
        match applied {
            Ok(key) => {
                self.state.clock = now;
                // The key an accepted result carried, as release and visit.
                self.history.push_keyed(at, Input::Event(event), Verdict::Accepted, key);
                Ok(())
            }
            Err(e) => {
                self.push_record(at, Input::Event(event), Verdict::Refused(Box::new(e.clone())));
                Err(e)
            }
        }
    }

    /// Whether [`Instance::handle_event`] would accept `event` at `now`, recording nothing: the
    /// engine's own checks (role, `distinct_from`, gate, window, outcome) on a copy of the
    /// instance, so a host can tell a person beforehand what they may do.
    ///
    /// # Errors
    /// The [`EngineError`] `handle_event` would return.
    pub fn check(&self, event: &Event, now: DateTime<Utc>) -> Result<(), EngineError> {
        let mut dry = self.clone();
        dry.handle_event(event.clone(), now)
    }

    /// Runs every timer due by `now` (gates, deadlines, window edges, the next cycle), each at
    /// its own instant. Recorded in the history only when a timer was due.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        let at = now;
        let now = crate::gate::clamp(now).max(self.state.clock);
        let first = self.next_wake();
        if first.is_none_or(|wake| wake > now) {
            return;
        }
        let spec = Arc::as_ptr(&self.workflow);
        self.catch_up_from(now, first);
        self.settle_spec(spec);
        self.state.clock = now;
        self.push_record(at, Input::Timeout, Verdict::Accepted);
    }

    /// The next effect the host must perform; drain until `None` after every input.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The next instant something can happen without an event: a gate opening, a deadline, a
    /// calendar window edge or the next cycle's start. Call [`Instance::handle_timeout`] then.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.next_wake()
    }

    /// The next transition notice, when notices are on (see [`Instance::set_notice_capacity`]).
    #[must_use]
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.as_mut()?.queue.pop_front()
    }

    /// Keeps up to `capacity` undrained notices (0, the default, turns them off). When the
    /// queue is full the oldest notice is dropped and counted in [`Instance::notices_dropped`].
    /// Pushing a notice never allocates once the queue has grown to its capacity.
    pub fn set_notice_capacity(&mut self, capacity: usize) {
        match (&mut self.notices, capacity) {
            (None, _) => self.notices = Notices::new(capacity),
            (Some(n), 0) if n.queue.is_empty() && n.dropped == 0 => self.notices = None,
            (Some(n), _) => {
                n.capacity = capacity;
                while n.queue.len() > capacity {
                    n.queue.pop_front();
                    n.dropped += 1;
                }
            }
        }
    }

    /// How many notices were dropped because the queue was full.
    #[must_use]
    pub fn notices_dropped(&self) -> u64 {
        self.notices.as_ref().map_or(0, |n| n.dropped)
    }

    /// The workflow the instance runs.
    #[must_use]
    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.workflow
    }

    /// The instance's id.
    #[must_use]
    pub fn id(&self) -> &InstanceId {
        &self.history.header.instance
    }

    /// The state, for comparing (`replay` and `restore` give equal states).
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The audit trail of every input.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Reserves room for `additional` more history records, so that a host that knows roughly
    /// how many inputs a cycle takes (about 40 for the KARS week) avoids reallocating on the
    /// hot path.
    pub fn reserve_history(&mut self, additional: usize) {
        self.history.reserve(additional);
    }

    /// Drops the held history records with a sequence number below `before_seq` (never past
    /// [`History::next_seq`]); the state, the queued effects and the numbering of later records
    /// are unchanged, and [`History::first_seq`] moves up to the first record still held.
    ///
    /// This is for hosts that persisted the records (the driver's journal, see
    /// [`crate::driver::HistoryInMemory`]): a long-running service then holds only the state.
    /// Replay needs the whole history read back from the store: [`Instance::replay`] refuses a
    /// history that does not start at record 0. A [`Snapshot`] of a released instance holds
    /// only the records still held, and [`Instance::restore`] accepts it.
    ///
    /// The record list's memory is returned once it is empty (with the drained effect queue's
    /// and the per-input scratch buffers); otherwise only a list that has become mostly spare
    /// capacity is shrunk, so releasing after every input costs next to nothing.
    pub fn release_history(&mut self, before_seq: u64) {
        debug_assert!(self.replay.is_none(), "history released while replaying");
        self.history.release_before(before_seq);
        if self.history.is_empty() {
            // Nothing is held between inputs: give back the effect queue's buffer too (the
            // history gave back its own), so an idle instance holds only its state.
            if self.effects.is_empty() {
                self.effects = VecDeque::new();
            }
        }
    }

    /// A serializable copy of the instance.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state.clone(),
            history: self.history.clone(),
            pending_effects: self.effects.iter().cloned().collect(),
        }
    }

    /// Rebuilds an instance from a [`Snapshot`].
    ///
    /// # Errors
    /// Returns [`EngineError::SnapshotMismatch`] when the snapshot was made with another spec
    /// or its tables do not fit the workflow.
    pub fn restore(workflow: Arc<Workflow>, snapshot: Snapshot) -> Result<Self, EngineError> {
        Self::restore_versions(workflow, snapshot, &|_| None)
    }

    /// [`Instance::restore`] for an instance that was upgrade: `workflow` is the spec in force
    /// and `versions` resolves the one scheduled for the next cycle, if any.
    ///
    /// # Errors
    /// As [`Instance::restore`]; [`crate::error::Mismatch::UnknownVersion`] when the scheduled
    /// spec does not resolve.
    pub fn restore_versions(
        workflow: Arc<Workflow>,
        snapshot: Snapshot,
        versions: &dyn Fn(Fingerprint) -> Option<Arc<Workflow>>,
    ) -> Result<Self, EngineError> {
        let Snapshot { state, history, pending_effects } = snapshot;
        let recorded = state.in_force().unwrap_or(history.header.fingerprint);
        if recorded != workflow.fingerprint {
            let mismatch = crate::error::Mismatch::Fingerprint { recorded, workflow: workflow.fingerprint };
            return Err(EngineError::SnapshotMismatch { mismatch });
        }
        if !state.fits(&workflow) || !state.sane() {
            return Err(EngineError::SnapshotMismatch { mismatch: crate::error::Mismatch::Shape });
        }
        let upcoming = match state.upcoming() {
            None => None,
            Some(fingerprint) => match versions(fingerprint).filter(|w| w.fingerprint == fingerprint) {
                Some(w) => Some(w),
                None => {
                    let mismatch = crate::error::Mismatch::UnknownVersion { fingerprint };
                    return Err(EngineError::SnapshotMismatch { mismatch });
                }
            },
        };
        let release = crate::effect::ReleaseId::of(state.monday);
        let key_prefix = EffectKey::prefix(history.header.instance.as_str(), release.as_str());
        let deadline_wake = step::earliest_deadline(&workflow, &state);
        Ok(Self {
            release,
            key_prefix,
            deadline_wake,
            workflow,
            state,
            history,
            effects: pending_effects.into(),
            notices: None,
            replay: None,
            moves: upcoming.map(|upcoming| Box::new(SpecMoves { upcoming: Some(upcoming), retired: None })),
        })
    }

    /// How much memory the instance holds.
    #[must_use]
    pub fn footprint(&self) -> Footprint {
        use std::mem::size_of;
        let s = &self.state;
        let notices =
            self.notices.as_ref().map_or(0, |n| size_of::<Notices>() + n.queue.capacity() * size_of::<Notice>());
        let state_heap = notices
            + s.tables_heap()
            + s.finished.capacity() * size_of::<state::CycleSummary>()
            + s.branches.as_ref().map_or(0, |b| {
                size_of::<state::Branches>()
                    + b.live.capacity() * size_of::<state::Live>()
                    + std::mem::size_of_val(&*b.arrived)
            });
        let history_heap = self.history.heap();
        Footprint { inline: size_of::<Self>(), state_heap, history_inline: size_of::<History>(), history_heap }
    }

    /// Runs `f` with the spec in force borrowed beside `&mut self`, without cloning its `Arc`:
    /// a clone and its drop are two atomic read-modify-writes per input, which wait for the
    /// stores before them (removing them took ~8% off a clean week's time on 2026-12-02).
    #[inline(always)]
    pub(crate) fn with_spec<R>(&mut self, f: impl FnOnce(&mut Self, &Workflow) -> R) -> R {
        let spec = std::ptr::NonNull::from(&*self.workflow);
        // SAFETY: the `Workflow` lives in the `Arc`'s allocation, not in `self`, and is never
        // mutated through an `Arc` (the engine never calls `get_mut` or `make_mut` on it), so
        // `&mut self` does not alias it. It stays allocated while `f` runs because a strong
        // count is kept on it until `f` returns: `self.workflow` holds one, and the only
        // assignment that can replace `self.workflow` inside `f`, a cycle start taking the
        // upcoming spec (`take_upcoming`), moves the old one into `SpecMoves::retired`. That
        // slot is emptied only once the public input that filled it has returned from every
        // borrow (`settle_spec`, at the end of `handle_event`, `handle_timeout` and
        // `upgrade`); one input fills it at most once, since only `Instance::upgrade`, a
        // public input of its own, schedules a spec. The borrow's lifetime is the closure's
        // own, so it cannot leave `f`.
        f(self, unsafe { spec.as_ref() })
    }

    /// At the end of a public input that began under the spec at `before`: when a cycle start
    /// moved to another one, drops the spec it moved away from (no borrow of it is alive any
    /// more). Compares only the spec pointer, which every input reads anyway, so the common
    /// input does not touch the cold `moves`.
    #[inline(always)]
    fn settle_spec(&mut self, before: *const Workflow) {
        if !std::ptr::eq(before, Arc::as_ptr(&self.workflow)) {
            self.release_retired();
        }
    }

    /// Drops the spec a cycle start moved away from.
    #[cold]
    #[inline(never)]
    fn release_retired(&mut self) {
        if let Some(moves) = &mut self.moves {
            moves.retired = None;
        }
        self.trim_moves();
    }

    /// Frees the box of spec moves once it holds neither spec.
    fn trim_moves(&mut self) {
        if self.moves.as_ref().is_some_and(|m| m.upcoming.is_none() && m.retired.is_none()) {
            self.moves = None;
        }
    }

    pub(crate) fn notice(&mut self, at: DateTime<Utc>, kind: NoticeKind) {
        let Some(n) = self.notices.as_mut() else {
            return;
        };
        if n.queue.len() >= n.capacity {
            n.queue.pop_front();
            n.dropped += 1;
        }
        if n.capacity > 0 {
            n.queue.push_back(Notice { at, kind });
        }
    }

    /// Forgets the last input if it was refused: a host that does not keep refused attempts
    /// (the driver's [`crate::driver::Refusals::Discard`]) calls this right after the refusal.
    /// A refused input changed no state, so only its history record goes. Returns whether one
    /// was forgotten: not when timers that were due ran before the refusal (the record then
    /// holds their resolved instants; run [`Instance::handle_timeout`] before an event to keep
    /// them apart).
    pub fn discard_refused(&mut self) -> bool {
        self.history.pop_refused()
    }

    /// The latest instant the instance has accepted an input at (or started at): inputs at an
    /// earlier instant count as this one.
    #[must_use]
    pub fn latest_instant(&self) -> DateTime<Utc> {
        self.state.clock
    }

    /// The idempotency key of the effect the waiting action at the token performs: what a
    /// host reports its result with ([`crate::Reporter::Effect`]). `None` when the token is not
    /// at a waiting action. While parallel branches run, the first branch's (by node); see
    /// [`Instance::result_key_at`].
    #[must_use]
    pub fn result_key(&self) -> Option<EffectKey> {
        self.state.current().and_then(|node| self.result_key_at(node))
    }

    /// [`Instance::result_key`] for the branch at `node`: `None` when no token waits there
    /// for an action's result.
    #[must_use]
    pub fn result_key_at(&self, node: crate::NodeIndex) -> Option<EffectKey> {
        let waits = self.workflow.node(node).action.as_ref().is_some_and(crate::workflow::CompiledAction::waits);
        (waits && self.expecting_at(node) == crate::error::Expecting::ActionResult).then(|| self.action_key(node))
    }

    fn push_record(&mut self, at: DateTime<Utc>, input: Input, verdict: Verdict) {
        self.history.push(at, input, verdict);
    }
}
