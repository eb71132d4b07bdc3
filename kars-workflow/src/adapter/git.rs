//! `GitVcs`: pull requests and `--no-ff` merges on a local git repository, through the `git`
//! command (no shell), idempotent per key.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};

use super::{
    AdapterError, BranchHead, BranchSelector, MergeOutcome, MergeRequest, OpenPullRequest, PullRequest, ReviewState,
    Vcs,
};

const GIT: &str = "git";

/// A [`Vcs`] on a local git repository.
///
/// * A pull request is a record (a JSON blob) under `refs/kars/pr/<key hash>`; its id is the
///   16-hex-digit hash of its idempotency key. It is `merged` once every source head it
///   recorded is in the target, `open` before.
/// * A merge creates one merge commit per source branch that the target does not contain yet
///   (always two parents, as `git merge --no-ff`), computed with `git merge-tree --write-tree`
///   (git 2.38 or later) so no working tree or index is touched, and moves the target with one
///   compare-and-swap `git update-ref`: a conflict leaves the target untouched, and a target
///   that moved meanwhile gives a transient error. The outcome is recorded under
///   `refs/kars/merge/<key hash>`; a repeated merge with the same key returns it and changes
///   nothing. Merge commits carry a `Kars-Idempotency-Key:` trailer.
/// * A named source branch that does not exist is a permanent error; a pattern that matches
///   no branch merges nothing.
///
/// The repository may be bare. In a repository with a working tree, GitVcs refuses to move
/// the branch that is checked out there (it would leave the working tree stale).
#[derive(Debug, Clone)]
pub struct GitVcs {
    repo: PathBuf,
    program: PathBuf,
    identity: Option<(String, String)>,
}

/// What a ref under `refs/kars/` records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Record {
    PullRequest { key: String, title: String, pull_request: PullRequest },
    Merge { key: String, from: BranchSelector, to: String, outcome: MergeOutcome },
}

impl GitVcs {
    /// A VCS on the repository at `repo` (its working tree or its git directory).
    #[must_use]
    pub fn new(repo: impl Into<PathBuf>) -> Self {
        Self { repo: repo.into(), program: PathBuf::from(GIT), identity: None }
    }

    /// Runs this `git` program instead of the one on `PATH`.
    #[must_use]
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Authors and commits merges as `name <email>` instead of the repository's configured user.
    #[must_use]
    pub fn with_identity(mut self, name: impl Into<String>, email: impl Into<String>) -> Self {
        self.identity = Some((name.into(), email.into()));
        self
    }

    /// The repository.
    #[must_use]
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// Runs `git -C <repo> <args>` with `stdin`, returning its output whatever its exit status.
    fn run<I, S>(
        &self,
        op: &'static str,
        key: Option<&str>,
        args: I,
        stdin: Option<&[u8]>,
    ) -> Result<Output, AdapterError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-C").arg(&self.repo).args(args);
        for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE"] {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
        if let Some((name, email)) = &self.identity {
            cmd.env("GIT_AUTHOR_NAME", name)
                .env("GIT_AUTHOR_EMAIL", email)
                .env("GIT_COMMITTER_NAME", name)
                .env("GIT_COMMITTER_EMAIL", email);
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            let detail = format!("cannot run `{}`: {e}", self.program.display());
            if e.kind() == std::io::ErrorKind::NotFound {
                AdapterError::permanent(
                    GIT,
                    op,
                    key,
                    format!("{detail}\nhelp: install git or point `with_program` at it"),
                )
            } else {
                AdapterError::transient(GIT, op, key, detail)
            }
        })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input)
                .map_err(|e| AdapterError::transient(GIT, op, key, format!("writing to git failed: {e}")))?;
        }
        child
            .wait_with_output()
            .map_err(|e| AdapterError::transient(GIT, op, key, format!("waiting for git failed: {e}")))
    }

    /// Runs git and requires success; returns trimmed standard output.
    fn ok<I, S>(
        &self,
        op: &'static str,
        key: Option<&str>,
        args: I,
        stdin: Option<&[u8]>,
    ) -> Result<String, AdapterError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(op, key, args, stdin)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(failure(op, key, &out))
        }
    }

    fn rev(&self, op: &'static str, key: Option<&str>, refname: &str) -> Result<Option<String>, AdapterError> {
        let out = self.run(op, key, ["rev-parse", "--verify", "--quiet", "--end-of-options", refname], None)?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Some(1) => Ok(None),
            _ => Err(failure(op, key, &out)),
        }
    }

    fn branch_head(&self, op: &'static str, key: Option<&str>, branch: &str) -> Result<Option<String>, AdapterError> {
        self.rev(op, key, &format!("refs/heads/{branch}^{{commit}}"))
    }

    fn branches(&self, op: &'static str, key: Option<&str>) -> Result<Vec<BranchHead>, AdapterError> {
        let out = self.ok(op, key, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"], None)?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let (commit, refname) = line.split_once(' ')?;
                let branch = refname.strip_prefix("refs/heads/")?;
                Some(BranchHead { branch: branch.to_owned(), commit: commit.to_owned() })
            })
            .collect())
    }

    fn is_ancestor(&self, op: &'static str, key: Option<&str>, commit: &str, of: &str) -> Result<bool, AdapterError> {
        let out = self.run(op, key, ["merge-base", "--is-ancestor", commit, of], None)?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failure(op, key, &out)),
        }
    }

    /// The target's head and the selected source heads; missing branches are permanent errors.
    fn resolve(
        &self,
        op: &'static str,
        key: &str,
        from: &BranchSelector,
        to: &str,
    ) -> Result<(String, Vec<BranchHead>), AdapterError> {
        check_branch(op, Some(key), to, false)?;
        check_branch(op, Some(key), &from.to_string(), matches!(from, BranchSelector::Pattern(_)))?;
        let Some(target) = self.branch_head(op, Some(key), to)? else {
            return Err(AdapterError::permanent(
                GIT,
                op,
                Some(key),
                format!("the target branch `{to}` does not exist"),
            ));
        };
        let sources = match from {
            BranchSelector::Name(name) => match self.branch_head(op, Some(key), name)? {
                Some(commit) => vec![BranchHead { branch: name.clone(), commit }],
                None => {
                    let detail =
                        format!("the source branch `{name}` does not exist, so there is nothing to merge into `{to}`");
                    return Err(AdapterError::permanent(GIT, op, Some(key), detail));
                }
            },
            BranchSelector::Pattern(_) => self
                .branches(op, Some(key))?
                .into_iter()
                .filter(|b| from.matches(&b.branch) && b.branch != to)
                .collect(),
        };
        Ok((target, sources))
    }

    fn read_record(&self, op: &'static str, key: Option<&str>, refname: &str) -> Result<Option<Record>, AdapterError> {
        if self.rev(op, key, refname)?.is_none() {
            return Ok(None);
        }
        let text = self.ok(op, key, ["cat-file", "blob", refname], None)?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            AdapterError::permanent(GIT, op, key, format!("the record `{refname}` is not a kars record: {e}"))
        })
    }

    /// Stores `record` under `refname` unless that ref exists; returns whether it was created.
    fn write_record(&self, op: &'static str, key: &str, refname: &str, record: &Record) -> Result<bool, AdapterError> {
        let json = serde_json::to_vec(record)
            .map_err(|e| AdapterError::permanent(GIT, op, Some(key), format!("cannot encode the record: {e}")))?;
        let blob = self.ok(op, Some(key), ["hash-object", "-w", "--stdin"], Some(&json))?;
        let out =
            self.run(op, Some(key), ["update-ref", "--stdin"], Some(format!("create {refname} {blob}\n").as_bytes()))?;
        Ok(out.status.success())
    }

    /// Refuses to move `branch` if it is checked out in this repository's working tree.
    fn check_not_checked_out(&self, op: &'static str, key: &str, branch: &str) -> Result<(), AdapterError> {
        let out = self.run(op, Some(key), ["symbolic-ref", "--quiet", "HEAD"], None)?;
        let bare = self.ok(op, Some(key), ["rev-parse", "--is-bare-repository"], None)? == "true";
        if !bare
            && out.status.success()
            && String::from_utf8_lossy(&out.stdout).trim() == format!("refs/heads/{branch}")
        {
            let detail = format!(
                "`{branch}` is checked out in `{}`, and moving it would leave that working tree stale\n\
                 help: check out another branch there, or use a bare repository",
                self.repo.display()
            );
            return Err(AdapterError::permanent(GIT, op, Some(key), detail));
        }
        Ok(())
    }

    fn merge_one(&self, key: &str, target: &str, source: &BranchHead, to: &str) -> Result<String, AdapterError> {
        const OP: &str = "merge";
        let out =
            self.run(OP, Some(key), ["merge-tree", "--write-tree", "--name-only", target, &source.commit], None)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                let files: Vec<&str> = stdout.lines().skip(1).take_while(|l| !l.is_empty()).collect();
                let detail = format!(
                    "merging `{}` into `{to}` conflicts in {}\nhelp: merge `{to}` into `{}` and resolve the conflicts there",
                    source.branch,
                    files.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
                    source.branch
                );
                return Err(AdapterError::permanent(GIT, OP, Some(key), detail));
            }
            _ => return Err(failure(OP, Some(key), &out)),
        }
        let tree = stdout.lines().next().unwrap_or_default().trim().to_owned();
        let message = format!(
            "Merge branch '{}' into {to}\n\nKars-Idempotency-Key: {}\n",
            source.branch,
            key.chars().map(|c| if c.is_control() { '?' } else { c }).collect::<String>()
        );
        self.ok(
            OP,
            Some(key),
            ["commit-tree", &tree, "-p", target, "-p", &source.commit, "-F", "-"],
            Some(message.as_bytes()),
        )
    }
}

/// A failed git command as an error: lock contention is transient, anything else permanent.
fn failure(op: &'static str, key: Option<&str>, out: &Output) -> AdapterError {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let detail = format!("git exited with {}: {stderr}", out.status);
    if stderr.contains("cannot lock ref")
        || stderr.contains(".lock': File exists")
        || stderr.contains("Unable to create")
    {
        AdapterError::transient(GIT, op, key, detail)
    } else {
        AdapterError::permanent(GIT, op, key, detail)
    }
}

/// Checks a branch name (or pattern) against the rules of `git check-ref-format --branch`, so
/// no name reaches git as an option or a revision expression.
fn check_branch(op: &'static str, key: Option<&str>, name: &str, pattern: bool) -> Result<(), AdapterError> {
    let stars = name.matches('*').count();
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name == "@"
        || name.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock"))
        || name.chars().any(|c| c.is_ascii_control() || " ~^:?[\\".contains(c))
        || if pattern { stars != 1 } else { stars != 0 };
    if bad {
        let what = if pattern { "branch pattern (with exactly one `*`)" } else { "branch name" };
        return Err(AdapterError::permanent(GIT, op, key, format!("`{}` is not a valid {what}", name.escape_debug())));
    }
    Ok(())
}

/// The 64-bit FNV-1a hash of an idempotency key, as 16 hex digits: a safe ref name component.
fn key_hash(key: &str) -> String {
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

fn collision(op: &'static str, key: &str, refname: &str) -> AdapterError {
    let detail = format!("`{refname}` records a different key with the same hash\nhelp: use another idempotency key");
    AdapterError::permanent(GIT, op, Some(key), detail)
}

impl Vcs for GitVcs {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        const OP: &str = "open a pull request";
        let key = request.key.as_str();
        let refname = format!("refs/kars/pr/{}", key_hash(key));
        let recorded = |record| match record {
            Some(Record::PullRequest { key: k, pull_request, .. }) if k == key => Ok(Some(pull_request)),
            Some(_) => Err(collision(OP, key, &refname)),
            None => Ok(None),
        };
        if let Some(pull_request) = recorded(self.read_record(OP, Some(key), &refname)?)? {
            return Ok(pull_request);
        }
        let (_, sources) = self.resolve(OP, key, &request.from, &request.to)?;
        let pull_request =
            PullRequest { id: key_hash(key), from: request.from.clone(), to: request.to.clone(), sources };
        let record = Record::PullRequest {
            key: key.to_owned(),
            title: request.title.clone(),
            pull_request: pull_request.clone(),
        };
        if self.write_record(OP, key, &refname, &record)? {
            return Ok(pull_request);
        }
        // Another caller may have recorded the same key first: return its pull request.
        recorded(self.read_record(OP, Some(key), &refname)?)?.ok_or_else(|| {
            AdapterError::transient(GIT, OP, Some(key), format!("cannot record the pull request under `{refname}`"))
        })
    }

    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        const OP: &str = "read a review state";
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AdapterError::permanent(
                GIT,
                OP,
                None,
                format!("`{}` is not a pull request id", id.escape_debug()),
            ));
        }
        let refname = format!("refs/kars/pr/{id}");
        let Some(Record::PullRequest { pull_request, .. }) = self.read_record(OP, None, &refname)? else {
            return Err(AdapterError::permanent(GIT, OP, None, format!("there is no pull request `{id}`")));
        };
        let Some(target) = self.branch_head(OP, None, &pull_request.to)? else {
            return Ok(ReviewState::Closed);
        };
        for source in &pull_request.sources {
            if !self.is_ancestor(OP, None, &source.commit, &target)? {
                return Ok(ReviewState::Open);
            }
        }
        Ok(ReviewState::Merged)
    }

    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        const OP: &str = "merge";
        let key = request.key.as_str();
        let refname = format!("refs/kars/merge/{}", key_hash(key));
        let replay = |record| match record {
            Record::Merge { key: k, outcome, .. } if k == key => Ok(MergeOutcome { replayed: true, ..outcome }),
            _ => Err(collision(OP, key, &refname)),
        };
        if let Some(record) = self.read_record(OP, Some(key), &refname)? {
            return replay(record);
        }
        let (target, sources) = self.resolve(OP, key, &request.from, &request.to)?;
        let mut head = target.clone();
        let mut merged = Vec::new();
        for source in sources {
            if self.is_ancestor(OP, Some(key), &source.commit, &head)? {
                continue;
            }
            head = self.merge_one(key, &head, &source, &request.to)?;
            merged.push(source);
        }
        if head != target {
            self.check_not_checked_out(OP, key, &request.to)?;
            let branch_ref = format!("refs/heads/{}", request.to);
            let message = format!("kars: merge {} into {}", request.from, request.to);
            let out = self.run(OP, Some(key), ["update-ref", "-m", &message, &branch_ref, &head, &target], None)?;
            if !out.status.success() {
                let detail = format!("`{}` moved while merging; nothing was changed", request.to);
                return Err(AdapterError::transient(GIT, OP, Some(key), detail));
            }
        }
        let outcome = MergeOutcome { head, merged, replayed: false };
        let record = Record::Merge {
            key: key.to_owned(),
            from: request.from.clone(),
            to: request.to.clone(),
            outcome: outcome.clone(),
        };
        if self.write_record(OP, key, &refname, &record)? {
            return Ok(outcome);
        }
        // Another caller recorded the same key first (our merge found nothing left to do).
        match self.read_record(OP, Some(key), &refname)? {
            Some(record) => replay(record),
            None => {
                Err(AdapterError::transient(GIT, OP, Some(key), format!("cannot record the merge under `{refname}`")))
            }
        }
    }

    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        const OP: &str = "read a branch head";
        check_branch(OP, None, branch, false)?;
        self.branch_head(OP, None, branch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_are_checked() {
        for ok in ["kars-dev", "feature/a-1", "release/2026.48"] {
            assert!(check_branch("t", None, ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a..b", "a b", "a~1", "x^", "a:b", "@", "a/", ".hidden", "a.lock", "a@{1}", "a*"] {
            assert!(check_branch("t", None, bad, false).is_err(), "{bad}");
        }
        assert!(check_branch("t", None, "feature/*", true).is_ok());
        assert!(check_branch("t", None, "feature/**", true).is_err());
        assert!(check_branch("t", None, "feature", true).is_err());
    }

    #[test]
    fn key_hashes_are_stable_hex() {
        assert_eq!(key_hash(""), "cbf29ce484222325");
        assert_eq!(key_hash("a"), "af63dc4c8601ec8c");
        assert_ne!(key_hash("kars/2026-W48/G/1"), key_hash("kars/2026-W48/G/2"));
    }
}
