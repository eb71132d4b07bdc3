//! The GitHub flavour of the fake forge: pulls (list, create, get, update, merge), reviews,
//! check runs, branches, Actions workflow dispatches and runs.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, FakeForge, Flavour, TOKEN, paginate};

pub const OWNER: &str = "keydatalab";
pub const REPO: &str = "kars";

/// A pull request on the fake.
#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub head: String,
    pub head_sha: String,
    pub base: String,
    pub body: String,
    pub open: bool,
    pub merged: bool,
    pub merge_sha: Option<String>,
    pub merge_method: Option<String>,
    pub conflict: bool,
    /// Reads left that answer `mergeable: null`.
    pub computing: u32,
    pub reviews: Vec<(String, String, String)>,
}

/// A workflow run on the fake.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: u64,
    pub workflow: String,
    pub inputs: Value,
    pub status: String,
    pub conclusion: Option<String>,
    pub polls: u32,
}

/// GitHub's state.
#[derive(Debug, Default)]
pub struct GitHub {
    pub branches: BTreeMap<String, String>,
    pub pulls: Vec<Pull>,
    pub checks: BTreeMap<String, Vec<(String, String, Option<String>)>>,
    /// Commit statuses by sha: (context, state).
    pub statuses: BTreeMap<String, Vec<(String, String)>>,
    pub runs: Vec<Run>,
    /// The largest page the fake serves (forces pagination).
    pub page_cap: usize,
    /// Reads of a new pull request that answer `mergeable: null`.
    pub computing_reads: u32,
    /// Polls of a run before it completes, and its conclusion.
    pub run_polls: u32,
    pub run_conclusion: String,
    commits: u64,
}

impl GitHub {
    fn sha(&mut self) -> String {
        self.commits += 1;
        format!("{:040x}", 0x00c0_ffee_0000_u64 + self.commits)
    }

    /// Creates `branch` (or gives it a new commit) and returns its head.
    pub fn push(&mut self, branch: &str) -> String {
        let sha = self.sha();
        self.branches.insert(branch.to_owned(), sha.clone());
        for pull in self.pulls.iter_mut().filter(|p| p.open && p.head == branch) {
            pull.head_sha.clone_from(&sha);
        }
        sha
    }

    /// A pull request opened by a person.
    pub fn open_pull(&mut self, head: &str, base: &str) -> u64 {
        let number = self.pulls.len() as u64 + 1;
        let head_sha = self.branches[head].clone();
        let computing = self.computing_reads;
        self.pulls.push(Pull {
            number,
            title: format!("{head} into {base}"),
            head: head.into(),
            head_sha,
            base: base.into(),
            body: String::new(),
            open: true,
            merged: false,
            merge_sha: None,
            merge_method: None,
            conflict: false,
            computing,
            reviews: Vec::new(),
        });
        number
    }

    /// `login` reviews pull `number` on its current head.
    pub fn review(&mut self, number: u64, login: &str, state: &str) {
        let pull = &mut self.pulls[number as usize - 1];
        pull.reviews.push((login.into(), state.into(), pull.head_sha.clone()));
    }

    pub fn pull(&self, number: u64) -> &Pull {
        &self.pulls[number as usize - 1]
    }

    pub fn pull_mut(&mut self, number: u64) -> &mut Pull {
        &mut self.pulls[number as usize - 1]
    }

    /// The open pull request from `head` to `base`.
    pub fn open_from(&self, head: &str, base: &str) -> Option<u64> {
        self.pulls.iter().find(|p| p.open && p.head == head && p.base == base).map(|p| p.number)
    }

    fn pull_json(&self, p: &Pull, full: bool) -> Value {
        let mut v = json!({
            "number": p.number,
            "title": p.title,
            "state": if p.open { "open" } else { "closed" },
            "body": if p.body.is_empty() { Value::Null } else { Value::String(p.body.clone()) },
            "merged_at": if p.merged { Value::String("2026-11-30T15:00:00Z".into()) } else { Value::Null },
            "head": { "ref": p.head, "sha": p.head_sha, "label": format!("{OWNER}:{}", p.head) },
            "base": { "ref": p.base, "sha": self.branches.get(&p.base).cloned().unwrap_or_default() },
        });
        if full {
            v["merged"] = json!(p.merged);
            v["mergeable"] = if p.merged || !p.open || p.computing > 0 { Value::Null } else { json!(!p.conflict) };
            v["mergeable_state"] = json!(if p.conflict { "dirty" } else { "clean" });
            v["merge_commit_sha"] = json!(p.merge_sha);
        }
        v
    }

    fn number(path: &str) -> Option<u64> {
        path.split('/').nth(5)?.parse().ok()
    }
}

fn validation(message: &str) -> Answer {
    Answer::json(
        422,
        json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "code": "custom", "message": message }] }),
    )
}

fn not_found() -> Answer {
    Answer::json(404, json!({ "message": "Not Found" }))
}

impl Flavour for GitHub {
    fn route(&self, method: &Method, path: &str) -> &'static str {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["repos", _, _, "pulls"]) => "list_pulls",
            ("POST", ["repos", _, _, "pulls"]) => "create_pull",
            ("GET", ["repos", _, _, "pulls", _]) => "get_pull",
            ("PATCH", ["repos", _, _, "pulls", _]) => "update_pull",
            ("GET", ["repos", _, _, "pulls", _, "reviews"]) => "reviews",
            ("PUT", ["repos", _, _, "pulls", _, "merge"]) => "merge",
            ("GET", ["repos", _, _, "commits", _, "check-runs"]) => "check_runs",
            ("GET", ["repos", _, _, "commits", _, "status"]) => "status",
            ("GET", ["repos", _, _, "branches", ..]) => "branch",
            ("POST", ["repos", _, _, "actions", "workflows", _, "dispatches"]) => "dispatch",
            ("GET", ["repos", _, _, "actions", "workflows", _, "runs"]) => "list_runs",
            ("GET", ["repos", _, _, "actions", "runs", _]) => "get_run",
            _ => "other",
        }
    }

    fn move_head(&mut self, path: &str) {
        if let Some(head) = Self::number(path).and_then(|n| self.pulls.get(n as usize - 1)).map(|p| p.head.clone()) {
            self.push(&head);
        }
    }

    fn answer(&mut self, base: &str, method: &Method, path: &str, query: &[(String, String)], body: &[u8]) -> Answer {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
        let prefix = format!("/repos/{OWNER}/{REPO}/");
        if !path.starts_with(&prefix) {
            return not_found();
        }
        match self.route(method, path) {
            "list_pulls" => {
                let state = get("state").unwrap_or_else(|| "open".into());
                let head = get("head");
                let base_branch = get("base");
                let mut items: Vec<Value> = self
                    .pulls
                    .iter()
                    .rev()
                    .filter(|p| match state.as_str() {
                        "open" => p.open,
                        "closed" => !p.open,
                        _ => true,
                    })
                    .filter(|p| head.as_ref().is_none_or(|h| *h == format!("{OWNER}:{}", p.head)))
                    .filter(|p| base_branch.as_ref().is_none_or(|b| *b == p.base))
                    .map(|p| self.pull_json(p, false))
                    .collect();
                items.shrink_to_fit();
                paginate(base, path, query, items, self.page_cap.max(1))
            }
            "create_pull" => {
                let (Some(head), Some(base_branch)) = (text("head"), text("base")) else {
                    return validation("head and base are required");
                };
                if !self.branches.contains_key(&head) || !self.branches.contains_key(&base_branch) {
                    return Answer::json(
                        422,
                        json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "field": "head", "code": "invalid" }] }),
                    );
                }
                if self.open_from(&head, &base_branch).is_some() {
                    return validation(&format!("A pull request already exists for {OWNER}:{head}."));
                }
                let number = self.open_pull(&head, &base_branch);
                let pull = self.pull_mut(number);
                pull.title = text("title").unwrap_or_default();
                pull.body = text("body").unwrap_or_default();
                let pull = self.pull(number).clone();
                Answer::json(201, self.pull_json(&pull, true))
            }
            "get_pull" | "update_pull" | "reviews" | "merge" => {
                let Some(number) = Self::number(path).filter(|n| *n >= 1 && *n as usize <= self.pulls.len()) else {
                    return not_found();
                };
                match self.route(method, path) {
                    "get_pull" => {
                        let pull = self.pull(number).clone();
                        let answer = Answer::json(200, self.pull_json(&pull, true));
                        let pull = self.pull_mut(number);
                        pull.computing = pull.computing.saturating_sub(1);
                        answer
                    }
                    "update_pull" => {
                        if let Some(body) = text("body") {
                            self.pull_mut(number).body = body;
                        }
                        let pull = self.pull(number).clone();
                        Answer::json(200, self.pull_json(&pull, true))
                    }
                    "reviews" => {
                        let items = self
                            .pull(number)
                            .reviews
                            .iter()
                            .enumerate()
                            .map(|(i, (login, state, commit))| {
                                json!({ "id": i + 1, "user": { "login": login }, "state": state, "commit_id": commit })
                            })
                            .collect();
                        paginate(base, path, query, items, self.page_cap.max(1))
                    }
                    _ => self.merge(number, &input),
                }
            }
            "check_runs" => {
                let sha = path.split('/').nth(5).unwrap_or_default();
                let name = get("check_name");
                let runs: Vec<Value> = self
                    .checks
                    .get(sha)
                    .into_iter()
                    .flatten()
                    .rev()
                    .filter(|(n, _, _)| name.as_ref().is_none_or(|want| want == n))
                    .map(|(name, status, conclusion)| json!({ "name": name, "status": status, "conclusion": conclusion, "head_sha": sha }))
                    .collect();
                let total = runs.len();
                let mut page = paginate(base, path, query, runs, self.page_cap.max(1));
                page.body = json!({ "total_count": total, "check_runs": page.body });
                page
            }
            "status" => {
                let sha = path.split('/').nth(5).unwrap_or_default();
                let statuses: Vec<Value> = self
                    .statuses
                    .get(sha)
                    .into_iter()
                    .flatten()
                    .map(|(context, state)| json!({ "context": context, "state": state }))
                    .collect();
                let total = statuses.len();
                let mut page = paginate(base, path, query, statuses, self.page_cap.max(1));
                page.body = json!({ "sha": sha, "state": "pending", "total_count": total, "statuses": page.body });
                page
            }
            "branch" => {
                let name = path.strip_prefix(&format!("{prefix}branches/")).unwrap_or_default();
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                match self.branches.get(name.as_ref()) {
                    Some(sha) => Answer::json(200, json!({ "name": name, "commit": { "sha": sha } })),
                    None => Answer::json(404, json!({ "message": "Branch not found" })),
                }
            }
            "dispatch" => {
                let workflow = path.split('/').nth(6).unwrap_or_default().to_owned();
                if text("ref").is_none_or(|r| !self.branches.contains_key(&r)) {
                    return Answer::json(422, json!({ "message": "No ref found for: main" }));
                }
                let id = 9000 + self.runs.len() as u64;
                self.runs.push(Run {
                    id,
                    workflow,
                    inputs: input.get("inputs").cloned().unwrap_or(Value::Null),
                    status: "queued".into(),
                    conclusion: None,
                    polls: 0,
                });
                Answer::json(204, Value::Null)
            }
            "list_runs" => {
                let workflow = path.split('/').nth(6).unwrap_or_default();
                let runs: Vec<Value> = self
                    .runs
                    .iter()
                    .rev()
                    .filter(|r| r.workflow == workflow)
                    .map(|r| json!({ "id": r.id, "name": r.workflow, "display_title": r.inputs.get("kars_key").cloned().unwrap_or(Value::Null), "status": r.status, "conclusion": r.conclusion, "event": "workflow_dispatch" }))
                    .collect();
                let total = runs.len();
                // GitHub pages runs inside an object: `{ total_count, workflow_runs: [...] }`.
                let mut page = paginate(base, path, query, runs, self.page_cap.max(1));
                page.body = json!({ "total_count": total, "workflow_runs": page.body });
                page
            }
            "get_run" => {
                let id: u64 = path.split('/').nth(6).and_then(|s| s.parse().ok()).unwrap_or(0);
                let (polls, conclusion) = (self.run_polls, self.run_conclusion.clone());
                let Some(run) = self.runs.iter_mut().find(|r| r.id == id) else { return not_found() };
                // Each poll moves the run on: in_progress for `run_polls` polls, then completed.
                run.polls += 1;
                if run.polls > polls {
                    run.status = "completed".into();
                    run.conclusion = Some(if conclusion.is_empty() { "success".into() } else { conclusion });
                } else {
                    run.status = "in_progress".into();
                }
                Answer::json(200, json!({ "id": run.id, "status": run.status, "conclusion": run.conclusion }))
            }
            _ => not_found(),
        }
    }
}

impl GitHub {
    fn merge(&mut self, number: u64, input: &Value) -> Answer {
        let pull = self.pull(number).clone();
        if !pull.open || pull.merged {
            return Answer::json(405, json!({ "message": "Pull Request is not mergeable" }));
        }
        if let Some(sha) = input.get("sha").and_then(Value::as_str)
            && sha != pull.head_sha
        {
            return Answer::json(
                409,
                json!({ "message": "Head branch was modified. Review and try the merge again." }),
            );
        }
        if pull.conflict {
            return Answer::json(405, json!({ "message": "Pull Request is not mergeable" }));
        }
        let method = input.get("merge_method").and_then(Value::as_str).unwrap_or("merge").to_owned();
        if !matches!(method.as_str(), "merge" | "squash" | "rebase") {
            return validation("Invalid merge_method");
        }
        let sha = self.push(&pull.base);
        let pull = self.pull_mut(number);
        pull.open = false;
        pull.merged = true;
        pull.merge_sha = Some(sha.clone());
        pull.merge_method = Some(method);
        Answer::json(200, json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }))
    }
}

/// A fake GitHub with `kars-dev`, `kars-prod` and `main` branches and `page_cap` pulls a page.
pub fn start(page_cap: usize) -> FakeForge<GitHub> {
    let mut forge = GitHub { page_cap, ..GitHub::default() };
    for branch in ["main", "kars-prod", "kars-dev"] {
        forge.push(branch);
    }
    FakeForge::start(forge, "/api/v3", ("authorization", format!("Bearer {TOKEN}")))
}
