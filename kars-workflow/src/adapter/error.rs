//! `AdapterError`: a failed adapter call, transient (retry) or permanent (report).

use std::time::Duration;

/// Why an adapter call failed, and whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The call may succeed if retried later (a timeout, a 5xx, a busy lock, a moved ref).
    #[error("{adapter} could not {operation}{}: {detail}\nhelp: this failure is transient; retrying later may succeed", for_key(key.as_deref()))]
    Transient {
        /// The adapter (`git`, `webhook`).
        adapter: &'static str,
        /// What it was doing (`merge`, `notify`).
        operation: &'static str,
        /// The idempotency key of the call, if it had one.
        key: Option<String>,
        /// What went wrong, from the adapter's point of view.
        detail: String,
    },
    /// Transient, and the service said when to come back: a rate limit's `Retry-After` or
    /// reset time, a value the service is still computing. The driver waits at least
    /// `retry_after` (or its own backoff, if longer) before the next attempt.
    #[error("{adapter} could not {operation}{}: {detail}\nhelp: this failure is transient; the service asks to retry in {} s", for_key(key.as_deref()), retry_after.as_secs())]
    Throttled {
        /// The adapter (`github`, `gitlab`).
        adapter: &'static str,
        /// What it was doing (`merge`).
        operation: &'static str,
        /// The idempotency key of the call, if it had one.
        key: Option<String>,
        /// What went wrong, from the adapter's point of view.
        detail: String,
        /// How long the service asked to wait.
        retry_after: Duration,
    },
    /// Retrying the same call cannot help (a missing branch, a conflict, a 4xx).
    #[error("{adapter} could not {operation}{}: {detail}", for_key(key.as_deref()))]
    Permanent {
        /// The adapter (`git`, `webhook`).
        adapter: &'static str,
        /// What it was doing (`merge`, `notify`).
        operation: &'static str,
        /// The idempotency key of the call, if it had one.
        key: Option<String>,
        /// What went wrong, from the adapter's point of view.
        detail: String,
    },
    /// A forge's pull request misses what the merge requires (the spec's `requires:` over the
    /// adapter's defaults): permanent, nothing merged; each unmet requirement is data, which
    /// the driver journals with the failure.
    #[error("{adapter} could not {operation}{}: {detail}", for_key(key.as_deref()))]
    Unmet {
        /// The adapter (`github`, `gitlab`).
        adapter: &'static str,
        /// What it was doing (`merge`).
        operation: &'static str,
        /// The idempotency key of the call, if it had one.
        key: Option<String>,
        /// What is missing, in the order the requirements are written.
        unmet: Vec<crate::requirements::Unmet>,
        /// The same in words, with the pull request it concerns.
        detail: String,
    },
}

fn for_key(key: Option<&str>) -> String {
    key.map(|k| format!(" (key `{k}`)")).unwrap_or_default()
}

impl AdapterError {
    /// A transient failure.
    #[must_use]
    pub fn transient(
        adapter: &'static str,
        operation: &'static str,
        key: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Transient { adapter, operation, key: key.map(str::to_owned), detail: detail.into() }
    }

    /// A permanent failure.
    #[must_use]
    pub fn permanent(
        adapter: &'static str,
        operation: &'static str,
        key: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Permanent { adapter, operation, key: key.map(str::to_owned), detail: detail.into() }
    }

    /// A transient failure that should not be retried before `retry_after`.
    #[must_use]
    pub fn throttled(
        adapter: &'static str,
        operation: &'static str,
        key: Option<&str>,
        detail: impl Into<String>,
        retry_after: Duration,
    ) -> Self {
        Self::Throttled { adapter, operation, key: key.map(str::to_owned), detail: detail.into(), retry_after }
    }

    /// A pull request that misses `unmet` (not empty): the detail names it (`pull request
    /// #7`), says the requirements, then what the forge said in its own words, if anything
    /// (`check `ci` concluded `cancelled``).
    #[must_use]
    pub fn unmet(
        adapter: &'static str,
        operation: &'static str,
        key: Option<&str>,
        pull_request: &str,
        unmet: Vec<crate::requirements::Unmet>,
        forge_said: &[String],
    ) -> Self {
        debug_assert!(!unmet.is_empty(), "an unmet-requirements failure names what is unmet");
        let mut detail =
            format!("{pull_request} does not meet what the merge requires: {}", crate::requirements::describe(&unmet));
        if !forge_said.is_empty() {
            detail.push_str(&format!(" ({})", forge_said.join("; ")));
        }
        Self::Unmet { adapter, operation, key: key.map(str::to_owned), unmet, detail }
    }

    /// The requirements a refused merge did not meet (empty for other failures).
    #[must_use]
    pub fn unmet_requirements(&self) -> &[crate::requirements::Unmet] {
        match self {
            Self::Unmet { unmet, .. } => unmet,
            Self::Transient { .. } | Self::Throttled { .. } | Self::Permanent { .. } => &[],
        }
    }

    /// Whether retrying may help.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Throttled { .. })
    }

    /// How long the service asked to wait before a retry, if it said.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            Self::Transient { .. } | Self::Permanent { .. } | Self::Unmet { .. } => None,
        }
    }

    /// What went wrong, from the adapter's point of view.
    #[must_use]
    pub fn detail(&self) -> &str {
        match self {
            Self::Transient { detail, .. }
            | Self::Throttled { detail, .. }
            | Self::Permanent { detail, .. }
            | Self::Unmet { detail, .. } => detail,
        }
    }

    /// The idempotency key of the failed call, if it had one.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Transient { key, .. }
            | Self::Throttled { key, .. }
            | Self::Permanent { key, .. }
            | Self::Unmet { key, .. } => key.as_deref(),
        }
    }
}
