//! `RecordingNotifier` and `RecordingVcs`: in-memory fakes that record every call, keep a log
//! deduplicated by idempotency key, and fail on demand. For tests and simulations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    AdapterError, BranchHead, BranchSelector, MergeOutcome, MergeRequest, Notification, Notifier, OpenPullRequest,
    PullRequest, ReviewState, Vcs,
};

/// Which calls a fake fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailurePlan {
    /// The next this many calls fail with a transient error.
    pub transient: usize,
    /// After those, every call fails with a permanent error.
    pub permanent: bool,
}

impl FailurePlan {
    /// Never fail.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Fail the next `n` calls transiently, then succeed.
    #[must_use]
    pub fn transient(n: usize) -> Self {
        Self { transient: n, permanent: false }
    }

    /// Fail every call permanently.
    #[must_use]
    pub fn permanent() -> Self {
        Self { transient: 0, permanent: true }
    }

    /// Consumes one call: the error it must fail with, if any.
    fn take(&mut self, adapter: &'static str, operation: &'static str, key: Option<&str>) -> Option<AdapterError> {
        if self.transient > 0 {
            self.transient -= 1;
            Some(AdapterError::transient(adapter, operation, key, "injected transient failure"))
        } else if self.permanent {
            Some(AdapterError::permanent(adapter, operation, key, "injected permanent failure"))
        } else {
            None
        }
    }
}

/// One call a fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// The method (`notify`, `open_pull_request`, `merge`, `review_state`, `head`).
    pub operation: &'static str,
    /// The idempotency key, for effectful calls.
    pub key: Option<String>,
    /// Whether the key had been done before, so the call changed nothing.
    pub duplicate: bool,
    /// The injected or real error, if the call failed.
    pub error: Option<AdapterError>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A [`Notifier`] that records calls and delivers each key once.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    state: Mutex<NotifierState>,
}

#[derive(Debug, Default)]
struct NotifierState {
    plan: FailurePlan,
    calls: Vec<RecordedCall>,
    delivered: Vec<Notification>,
    keys: BTreeSet<String>,
}

impl RecordingNotifier {
    /// A notifier that never fails.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A notifier that fails as `plan` says.
    #[must_use]
    pub fn with_failures(plan: FailurePlan) -> Self {
        let fake = Self::new();
        fake.set_failures(plan);
        fake
    }

    /// Replaces the failure plan.
    pub fn set_failures(&self, plan: FailurePlan) {
        lock(&self.state).plan = plan;
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.state).calls.clone()
    }

    /// The delivered notifications: one per key, in order of first delivery.
    #[must_use]
    pub fn delivered(&self) -> Vec<Notification> {
        lock(&self.state).delivered.clone()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, n: &Notification) -> Result<(), AdapterError> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let key = Some(n.key.clone());
        if let Some(error) = state.plan.take("recording notifier", "notify", Some(&n.key)) {
            state.calls.push(RecordedCall { operation: "notify", key, duplicate: false, error: Some(error.clone()) });
            return Err(error);
        }
        let duplicate = !state.keys.insert(n.key.clone());
        if !duplicate {
            state.delivered.push(n.clone());
        }
        state.calls.push(RecordedCall { operation: "notify", key, duplicate, error: None });
        Ok(())
    }
}

/// A [`Vcs`] over in-memory branches that records calls and performs each key once.
///
/// Commits are named `c…` when set by the test and `m1`, `m2`, … for merges; a merge into a
/// branch that already contains the source does nothing, as in git.
#[derive(Debug, Default)]
pub struct RecordingVcs {
    state: Mutex<VcsState>,
}

#[derive(Debug, Default)]
struct VcsState {
    plan: FailurePlan,
    calls: Vec<RecordedCall>,
    branches: BTreeMap<String, String>,
    /// Every commit with the commits it contains (itself included).
    history: BTreeMap<String, BTreeSet<String>>,
    merges: BTreeMap<String, (MergeRequest, MergeOutcome)>,
    merge_log: Vec<(MergeRequest, MergeOutcome)>,
    pull_requests: BTreeMap<String, (OpenPullRequest, PullRequest)>,
    reviews: BTreeMap<String, ReviewState>,
    next_commit: u64,
}

const FAKE: &str = "recording vcs";

impl RecordingVcs {
    /// A VCS with no branches that never fails.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `branch` to point at `commit` (a new, unrelated commit if unseen).
    pub fn set_branch(&self, branch: &str, commit: &str) {
        let mut state = lock(&self.state);
        state.history.entry(commit.to_owned()).or_insert_with(|| BTreeSet::from([commit.to_owned()]));
        state.branches.insert(branch.to_owned(), commit.to_owned());
    }

    /// Deletes `branch`.
    pub fn delete_branch(&self, branch: &str) {
        lock(&self.state).branches.remove(branch);
    }

    /// Sets the review state `review_state` reports for pull request `id` until it is merged.
    pub fn set_review_state(&self, id: &str, review: ReviewState) {
        lock(&self.state).reviews.insert(id.to_owned(), review);
    }

    /// Replaces the failure plan.
    pub fn set_failures(&self, plan: FailurePlan) {
        lock(&self.state).plan = plan;
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.state).calls.clone()
    }

    /// The merges performed: one per key, in order.
    #[must_use]
    pub fn merges(&self) -> Vec<(MergeRequest, MergeOutcome)> {
        lock(&self.state).merge_log.clone()
    }

    /// The pull requests opened: one per key, ordered by key.
    #[must_use]
    pub fn pull_requests(&self) -> Vec<PullRequest> {
        lock(&self.state).pull_requests.values().map(|(_, pr)| pr.clone()).collect()
    }
}

impl VcsState {
    fn start(&mut self, operation: &'static str, key: Option<&str>) -> Result<(), AdapterError> {
        match self.plan.take(FAKE, operation, key) {
            Some(error) => {
                let call =
                    RecordedCall { operation, key: key.map(str::to_owned), duplicate: false, error: Some(error) };
                self.calls.push(call.clone());
                Err(call.error.unwrap_or_else(|| AdapterError::permanent(FAKE, operation, key, "failed")))
            }
            None => Ok(()),
        }
    }

    fn finish<T>(
        &mut self,
        operation: &'static str,
        key: Option<&str>,
        duplicate: bool,
        result: Result<T, AdapterError>,
    ) -> Result<T, AdapterError> {
        let error = result.as_ref().err().cloned();
        self.calls.push(RecordedCall { operation, key: key.map(str::to_owned), duplicate, error });
        result
    }

    fn sources(
        &self,
        from: &BranchSelector,
        to: &str,
        op: &'static str,
        key: &str,
    ) -> Result<Vec<BranchHead>, AdapterError> {
        if !self.branches.contains_key(to) {
            return Err(AdapterError::permanent(
                FAKE,
                op,
                Some(key),
                format!("the target branch `{to}` does not exist"),
            ));
        }
        if let BranchSelector::Name(name) = from
            && !self.branches.contains_key(name)
        {
            return Err(AdapterError::permanent(
                FAKE,
                op,
                Some(key),
                format!("the source branch `{name}` does not exist"),
            ));
        }
        Ok(self
            .branches
            .iter()
            .filter(|(b, _)| from.matches(b) && b.as_str() != to)
            .map(|(b, c)| BranchHead { branch: b.clone(), commit: c.clone() })
            .collect())
    }

    fn contains(&self, commit: &str, ancestor: &str) -> bool {
        self.history.get(commit).is_some_and(|h| h.contains(ancestor))
    }

    fn do_merge(&mut self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        let sources = self.sources(&request.from, &request.to, "merge", &request.key)?;
        let mut head = self.branches.get(&request.to).cloned().unwrap_or_default();
        let mut merged = Vec::new();
        for source in sources {
            if self.contains(&head, &source.commit) {
                continue;
            }
            self.next_commit += 1;
            let commit = format!("m{}", self.next_commit);
            let mut history: BTreeSet<String> = self.history.get(&head).cloned().unwrap_or_default();
            history.extend(self.history.get(&source.commit).cloned().unwrap_or_default());
            history.insert(commit.clone());
            self.history.insert(commit.clone(), history);
            head = commit;
            merged.push(source);
        }
        self.branches.insert(request.to.clone(), head.clone());
        Ok(MergeOutcome { head, merged, replayed: false })
    }
}

impl Vcs for RecordingVcs {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        const OP: &str = "open_pull_request";
        let mut state = lock(&self.state);
        let key = Some(request.key.as_str());
        state.start(OP, key)?;
        if let Some((_, pr)) = state.pull_requests.get(&request.key) {
            let pr = pr.clone();
            return state.finish(OP, key, true, Ok(pr));
        }
        let result = state.sources(&request.from, &request.to, OP, &request.key).map(|sources| PullRequest {
            id: format!("pr{}", state.pull_requests.len() + 1),
            from: request.from.clone(),
            to: request.to.clone(),
            sources,
        });
        if let Ok(pr) = &result {
            state.pull_requests.insert(request.key.clone(), (request.clone(), pr.clone()));
        }
        state.finish(OP, key, false, result)
    }

    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        const OP: &str = "review_state";
        let mut state = lock(&self.state);
        state.start(OP, None)?;
        let pr = state.pull_requests.values().map(|(_, pr)| pr).find(|pr| pr.id == id).cloned();
        let result = match pr {
            None => Err(AdapterError::permanent(FAKE, OP, None, format!("there is no pull request `{id}`"))),
            Some(pr) => {
                let target = state.branches.get(&pr.to).cloned().unwrap_or_default();
                if !pr.sources.is_empty() && pr.sources.iter().all(|s| state.contains(&target, &s.commit)) {
                    Ok(ReviewState::Merged)
                } else {
                    Ok(state.reviews.get(id).copied().unwrap_or(ReviewState::Open))
                }
            }
        };
        state.finish(OP, None, false, result)
    }

    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        const OP: &str = "merge";
        let mut state = lock(&self.state);
        let key = Some(request.key.as_str());
        state.start(OP, key)?;
        if let Some((_, outcome)) = state.merges.get(&request.key) {
            let outcome = MergeOutcome { replayed: true, ..outcome.clone() };
            return state.finish(OP, key, true, Ok(outcome));
        }
        let result = state.do_merge(request);
        if let Ok(outcome) = &result {
            state.merges.insert(request.key.clone(), (request.clone(), outcome.clone()));
            state.merge_log.push((request.clone(), outcome.clone()));
        }
        state.finish(OP, key, false, result)
    }

    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        let mut state = lock(&self.state);
        state.start("head", None)?;
        let head = state.branches.get(branch).cloned();
        state.finish("head", None, false, Ok(head))
    }
}
