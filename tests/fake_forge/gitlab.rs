//! The GitLab flavour of the fake forge: merge requests (list, create, get, update, merge),
//! approvals, pipeline jobs and branches, under `/projects/keydatalab%2Fkars`.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Value, json};

use super::{Answer, FakeForge, Flavour, TOKEN, paginate};

pub const PROJECT: &str = "keydatalab/kars";

/// A merge request on the fake.
#[derive(Debug, Clone)]
pub struct Mr {
    pub iid: u64,
    pub source: String,
    pub target: String,
    pub sha: String,
    pub description: String,
    /// `opened`, `merged` or `closed`.
    pub state: String,
    pub conflict: bool,
    pub squashed: Option<bool>,
    /// Reads left that answer `detailed_merge_status: checking`.
    pub checking: u32,
    pub approved_by: Vec<String>,
    pub approvals_required: u32,
    /// The head pipeline's id and jobs (name, status).
    pub pipeline: Option<(u64, Vec<(String, String)>)>,
}

/// A pipeline started through the API.
#[derive(Debug, Clone)]
pub struct FakePipeline {
    pub id: u64,
    /// `workflow: name: $KARS_KEY` in the project's `.gitlab-ci.yml`.
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub status: String,
    pub polls: u32,
}

/// GitLab's state.
#[derive(Debug, Default)]
pub struct GitLab {
    pub branches: BTreeMap<String, String>,
    pub mrs: Vec<Mr>,
    pub page_cap: usize,
    pub checking_reads: u32,
    pub pipelines: Vec<FakePipeline>,
    /// Polls of a pipeline before it ends, and how it ends (default `success`).
    pub pipeline_polls: u32,
    pub pipeline_status: String,
    commits: u64,
}

impl GitLab {
    pub fn push(&mut self, branch: &str) -> String {
        self.commits += 1;
        let sha = format!("{:040x}", 0x0061_71ab_0000_u64 + self.commits);
        self.branches.insert(branch.to_owned(), sha.clone());
        for mr in self.mrs.iter_mut().filter(|m| m.state == "opened" && m.source == branch) {
            mr.sha.clone_from(&sha);
        }
        sha
    }

    pub fn open_mr(&mut self, source: &str, target: &str) -> u64 {
        let iid = self.mrs.len() as u64 + 1;
        self.mrs.push(Mr {
            iid,
            source: source.into(),
            target: target.into(),
            sha: self.branches[source].clone(),
            description: String::new(),
            state: "opened".into(),
            conflict: false,
            squashed: None,
            checking: self.checking_reads,
            approved_by: Vec::new(),
            approvals_required: 1,
            pipeline: None,
        });
        iid
    }

    pub fn mr(&self, iid: u64) -> &Mr {
        &self.mrs[iid as usize - 1]
    }

    pub fn mr_mut(&mut self, iid: u64) -> &mut Mr {
        &mut self.mrs[iid as usize - 1]
    }

    fn mr_json(&self, m: &Mr, full: bool) -> Value {
        let mut v = json!({
            "iid": m.iid,
            "state": m.state,
            "description": m.description,
            "source_branch": m.source,
            "target_branch": m.target,
            "sha": m.sha,
        });
        if full {
            let status = if m.checking > 0 {
                "checking"
            } else if m.conflict {
                "conflict"
            } else if (m.approved_by.len() as u32) < m.approvals_required {
                "not_approved"
            } else {
                "mergeable"
            };
            v["detailed_merge_status"] = json!(status);
            v["has_conflicts"] = json!(m.conflict);
            v["head_pipeline"] =
                m.pipeline.as_ref().map_or(Value::Null, |(id, _)| json!({ "id": id, "status": "running" }));
        }
        v
    }

    fn iid(path: &str) -> Option<u64> {
        path.split('/').nth(4)?.parse().ok()
    }
}

impl Flavour for GitLab {
    fn route(&self, method: &Method, path: &str) -> &'static str {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["projects", _, "merge_requests"]) => "list_mrs",
            ("POST", ["projects", _, "merge_requests"]) => "create_mr",
            ("GET", ["projects", _, "merge_requests", _]) => "get_mr",
            ("PUT", ["projects", _, "merge_requests", _]) => "update_mr",
            ("GET", ["projects", _, "merge_requests", _, "approvals"]) => "approvals",
            ("PUT", ["projects", _, "merge_requests", _, "merge"]) => "merge",
            ("GET", ["projects", _, "repository", "branches", _]) => "branch",
            ("GET", ["projects", _, "pipelines", _, "jobs"]) => "jobs",
            ("GET", ["projects", _, "pipelines"]) => "list_pipelines",
            ("POST", ["projects", _, "pipeline"]) => "create_pipeline",
            ("GET", ["projects", _, "pipelines", _]) => "get_pipeline",
            _ => "other",
        }
    }

    fn rate_limit_status(&self) -> u16 {
        429
    }

    fn move_head(&mut self, path: &str) {
        if let Some(source) = Self::iid(path).and_then(|i| self.mrs.get(i as usize - 1)).map(|m| m.source.clone()) {
            self.push(&source);
        }
    }

    fn answer(&mut self, base: &str, method: &Method, path: &str, query: &[(String, String)], body: &[u8]) -> Answer {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
        let not_found = || Answer::json(404, json!({ "message": "404 Not found" }));
        if !path.starts_with("/projects/keydatalab%2Fkars/") {
            return Answer::json(404, json!({ "message": "404 Project Not Found" }));
        }
        let route = self.route(method, path);
        match route {
            "list_mrs" => {
                let state = get("state").unwrap_or_else(|| "all".into());
                let items = self
                    .mrs
                    .iter()
                    .rev()
                    .filter(|m| state == "all" || m.state == state)
                    .filter(|m| get("source_branch").is_none_or(|s| s == m.source))
                    .filter(|m| get("target_branch").is_none_or(|t| t == m.target))
                    .map(|m| self.mr_json(m, false))
                    .collect();
                paginate(base, path, query, items, self.page_cap.max(1))
            }
            "create_mr" => {
                let (Some(source), Some(target)) = (text("source_branch"), text("target_branch")) else {
                    return Answer::json(400, json!({ "error": "source_branch is missing" }));
                };
                if !self.branches.contains_key(&source) || !self.branches.contains_key(&target) {
                    return Answer::json(422, json!({ "message": ["Source branch does not exist"] }));
                }
                if let Some(m) =
                    self.mrs.iter().find(|m| m.state == "opened" && m.source == source && m.target == target)
                {
                    return Answer::json(
                        409,
                        json!({ "message": [format!("Another open merge request already exists for this source branch: !{}", m.iid)] }),
                    );
                }
                let iid = self.open_mr(&source, &target);
                self.mr_mut(iid).description = text("description").unwrap_or_default();
                let mr = self.mr(iid).clone();
                Answer::json(201, self.mr_json(&mr, true))
            }
            "get_mr" | "update_mr" | "approvals" | "merge" => {
                let Some(iid) = Self::iid(path).filter(|i| *i >= 1 && *i as usize <= self.mrs.len()) else {
                    return not_found();
                };
                match route {
                    "get_mr" => {
                        let mr = self.mr(iid).clone();
                        let answer = Answer::json(200, self.mr_json(&mr, true));
                        let mr = self.mr_mut(iid);
                        mr.checking = mr.checking.saturating_sub(1);
                        answer
                    }
                    "update_mr" => {
                        if let Some(d) = text("description") {
                            self.mr_mut(iid).description = d;
                        }
                        let mr = self.mr(iid).clone();
                        Answer::json(200, self.mr_json(&mr, true))
                    }
                    "approvals" => {
                        let mr = self.mr(iid);
                        let left = mr.approvals_required.saturating_sub(mr.approved_by.len() as u32);
                        let by: Vec<Value> =
                            mr.approved_by.iter().map(|u| json!({ "user": { "username": u } })).collect();
                        Answer::json(
                            200,
                            json!({ "approvals_required": mr.approvals_required, "approvals_left": left, "approved": left == 0, "approved_by": by }),
                        )
                    }
                    _ => self.merge(iid, &input),
                }
            }
            "branch" => {
                let name = path.split('/').nth(5).unwrap_or_default();
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                match self.branches.get(name.as_ref()) {
                    Some(sha) => Answer::json(200, json!({ "name": name, "commit": { "id": sha } })),
                    None => Answer::json(404, json!({ "message": "404 Branch Not Found" })),
                }
            }
            "jobs" => {
                let id: u64 = path.split('/').nth(4).and_then(|s| s.parse().ok()).unwrap_or(0);
                let jobs: Vec<Value> = self
                    .mrs
                    .iter()
                    .filter_map(|m| m.pipeline.as_ref())
                    .filter(|(p, _)| *p == id)
                    .flat_map(|(_, jobs)| jobs.iter().map(|(n, s)| json!({ "name": n, "status": s })))
                    .collect();
                paginate(base, path, query, jobs, self.page_cap.max(1))
            }
            "list_pipelines" => {
                let items = self
                    .pipelines
                    .iter()
                    .rev()
                    .filter(|p| get("name").is_none_or(|n| n == p.name))
                    .map(|p| json!({ "id": p.id, "name": p.name, "status": p.status }))
                    .collect();
                paginate(base, path, query, items, self.page_cap.max(1))
            }
            "create_pipeline" => {
                if text("ref").is_none_or(|r| !self.branches.contains_key(&r)) {
                    return Answer::json(400, json!({ "message": { "base": ["Reference not found"] } }));
                }
                let variables: BTreeMap<String, String> = input["variables"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| Some((v["key"].as_str()?.to_owned(), v["value"].as_str()?.to_owned())))
                    .collect();
                let id = 500 + self.pipelines.len() as u64;
                let name = variables.get("KARS_KEY").cloned().unwrap_or_default();
                self.pipelines.push(FakePipeline {
                    id,
                    name: name.clone(),
                    variables,
                    status: "created".into(),
                    polls: 0,
                });
                Answer::json(201, json!({ "id": id, "name": name, "status": "created" }))
            }
            "get_pipeline" => {
                let id: u64 = path.split('/').nth(4).and_then(|s| s.parse().ok()).unwrap_or(0);
                let (polls, status) = (self.pipeline_polls, self.pipeline_status.clone());
                let Some(p) = self.pipelines.iter_mut().find(|p| p.id == id) else { return not_found() };
                p.polls += 1;
                p.status = if p.polls > polls {
                    if status.is_empty() { "success".into() } else { status }
                } else {
                    "running".into()
                };
                Answer::json(200, json!({ "id": p.id, "name": p.name, "status": p.status }))
            }
            _ => not_found(),
        }
    }
}

impl GitLab {
    fn merge(&mut self, iid: u64, input: &Value) -> Answer {
        let mr = self.mr(iid).clone();
        if mr.state != "opened" {
            return Answer::json(405, json!({ "message": "405 Method Not Allowed" }));
        }
        if let Some(sha) = input.get("sha").and_then(Value::as_str)
            && sha != mr.sha
        {
            return Answer::json(
                409,
                json!({ "message": "SHA does not match HEAD of source branch: ".to_owned() + &mr.sha }),
            );
        }
        if mr.conflict {
            return Answer::json(406, json!({ "message": "Branch cannot be merged" }));
        }
        let sha = self.push(&mr.target);
        let mr = self.mr_mut(iid);
        mr.state = "merged".into();
        mr.squashed = input.get("squash").and_then(Value::as_bool);
        let json = json!({ "iid": iid, "state": "merged", "merge_commit_sha": sha, "sha": mr.sha, "source_branch": mr.source });
        Answer::json(200, json)
    }
}

/// A fake GitLab with `kars-dev`, `kars-prod` and `main` and `page_cap` items a page.
pub fn start(page_cap: usize) -> FakeForge<GitLab> {
    let mut forge = GitLab { page_cap, ..GitLab::default() };
    for branch in ["main", "kars-prod", "kars-dev"] {
        forge.push(branch);
    }
    FakeForge::start(forge, "/api/v4", ("private-token", TOKEN.to_owned()))
}
