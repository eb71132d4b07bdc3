//! The whole KARS week through the GitHub adapter against the fake GitHub: the feature pull
//! requests merge on Wednesday, the dev → prod pull request opens on Monday and merges at
//! 10:00 under the team lead's approval, through `mergeable: null` reads and a secondary rate
//! limit; and a crash between the merge and its acknowledgement merges once and the week goes
//! on.

#![cfg(feature = "forge")]

mod fake_forge;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fake_forge::Fault;
use fake_forge::week::{CrashOnce, WEEK, World, act, id, local, program, program_with, released, run_week};
use kars::workflow::driver::Driver;
use kars::workflow::journal::{MemoryStore, Store};

#[test]
fn a_kars_week_through_github() {
    let world = World::new();
    // One secondary rate limit on the way, with the wait GitHub asks for.
    world.fake.fault("create_pull", Fault::SecondaryRateLimit { retry_after: 2 });
    let driver = run_week(&world);
    released(&driver);
    let pulls = world.fake.with(|g| g.pulls.clone());
    assert_eq!(pulls.len(), 2, "one pull request opened by kars, beside the feature's");
    assert!(pulls.iter().all(|p| p.merged), "{pulls:?}");
    assert_eq!(pulls[1].head, "kars-dev");
    assert!(pulls[1].body.contains("<!-- kars-pr-key: kars/2026-W48/V/1 -->"));
    assert!(pulls[1].body.contains("<!-- kars-merge-key: kars/2026-W48/X/1 -->"));
    assert_eq!(world.fake.count("merge"), 2);
    assert_eq!(world.fake.count("create_pull"), 2, "the rate-limited call and its retry");
    let ops: Vec<String> = world.ops.performed().into_iter().map(|o| o.node.to_string()).collect();
    assert_eq!(ops, ["H", "Y", "AD"]);
    // The request count the README quotes (`-- --nocapture`); its time is `benches/forge_week.rs`.
    let mut routes = std::collections::BTreeMap::new();
    for seen in world.fake.seen() {
        *routes
            .entry(world.fake.with(|g| fake_forge::Flavour::route(g, &seen.method.parse().unwrap(), &seen.path)))
            .or_insert(0) += 1;
    }
    assert_eq!(world.vcs.requests(), world.fake.seen().len() as u64);
    println!("a KARS week through GitHub: {} requests: {routes:?}", world.vcs.requests());
}

#[test]
fn a_crash_between_the_merge_and_its_acknowledgement_merges_once_and_the_week_goes_on() {
    let world = World::new();
    let memory = Arc::new(MemoryStore::new());
    let healthy = CrashOnce { inner: Arc::clone(&memory), armed: Arc::new(|| false), crashed: Arc::default() };
    let mut driver = Driver::create(world.parts(healthy), &program(), &id(), None).unwrap();
    for step in 0..14 {
        act(&world, &mut driver, step);
    }
    drop(driver);
    // Monday 10:00: X merges on GitHub; the first append after that (its acknowledgement) fails.
    let merged = world.fake.watch(|g| g.pulls.len() == 2 && g.open_from("kars-dev", "kars-prod").is_none());
    let crashing = CrashOnce { inner: Arc::clone(&memory), armed: Arc::new(merged), crashed: Arc::default() };
    let mut driver = Driver::open(world.parts(crashing.clone()), &program(), &id()).unwrap();
    assert!(driver.run_until(local("2026-11-30 10:05")).is_err());
    assert!(crashing.crashed.load(Ordering::SeqCst));
    drop(driver);
    // The next process: X is pending again; its retry finds the pull request merged.
    let mut driver = Driver::open(world.parts(Arc::clone(&memory)), &program(), &id()).unwrap();
    let pending: Vec<String> = driver.pending_effects().map(|e| e.key.to_string()).collect();
    assert_eq!(pending, ["kars/2026-W48/X/1"]);
    driver.resume().unwrap();
    assert_eq!(world.fake.count("merge"), 2, "GitHub merged the dev → prod pull request once");
    for step in 14..WEEK.len() {
        act(&world, &mut driver, step);
    }
    driver.run_until(local("2026-11-30 12:00")).unwrap();
    released(&driver);
}

#[test]
fn a_kars_week_deploys_through_github_actions() {
    let world = World::with_actions();
    let driver = run_week(&world);
    released(&driver);
    let runs = world.fake.with(|g| g.runs.clone());
    let dispatched: Vec<(String, String, String)> = runs
        .iter()
        .map(|r| {
            let input = |k: &str| r.inputs[k].as_str().unwrap_or_default().to_owned();
            (input("node"), input("action"), input("kars_key"))
        })
        .collect();
    assert_eq!(
        dispatched,
        [
            ("H".into(), "deploy".into(), "kars/2026-W48/H/1".into()),
            ("Y".into(), "deploy".into(), "kars/2026-W48/Y/1".into()),
            ("AD".into(), "run_checks".into(), "kars/2026-W48/AD/1".into()),
        ]
    );
    assert!(runs.iter().all(|r| r.inputs["release"] == "2026-W48"));
    assert!(world.ops.performed().is_empty());
    // The token is nowhere in the journal.
    let stored = driver.store().read(&id()).unwrap();
    let token = fake_forge::TOKEN.as_bytes();
    for bytes in std::iter::once(&stored.header).chain(&stored.records) {
        assert!(!bytes.windows(token.len()).any(|w| w == token));
    }
}

#[test]
fn what_the_spec_requires_of_a_merge_is_what_the_forge_adapter_checks() {
    let world = World::new();
    let program = program_with(&[(
        "action: { merge_pull_request: { from: dev, to: prod } }",
        "action: { merge_pull_request: { from: dev, to: prod, requires: { approvals: 1, checks: [ci], method: squash } } }",
    )]);
    let mut driver = Driver::create(world.parts(Arc::new(MemoryStore::new())), &program, &id(), None).unwrap();
    for step in 0..14 {
        act(&world, &mut driver, step);
    }
    // Monday 10:00: the spec's check `ci` has not reported; X waits and retries, then fails.
    driver.run_until(local("2026-11-30 10:05")).unwrap();
    assert!(world.fake.with(|g| g.open_from("kars-dev", "kars-prod")).is_some(), "merged without `ci`");
    assert!(world.fake.count("check_runs") >= 1);
    assert_eq!(world.fake.count("merge"), 1, "only the feature pull request merged");
    // The same week where `ci` passed on the approved head: merged, squashed, as the spec says.
    let world = World::new();
    let mut driver = Driver::create(world.parts(Arc::new(MemoryStore::new())), &program, &id(), None).unwrap();
    for step in 0..14 {
        act(&world, &mut driver, step);
    }
    world.fake.with(|g| {
        let number = g.open_from("kars-dev", "kars-prod").unwrap();
        let sha = g.pull(number).head_sha.clone();
        g.checks.insert(sha, vec![("ci".into(), "completed".into(), Some("success".into()))]);
    });
    driver.run_until(local("2026-11-30 10:05")).unwrap();
    let pull = world.fake.with(|g| g.pulls[1].clone());
    assert!(pull.merged && pull.merge_method.as_deref() == Some("squash"), "{pull:?}");
    // The feature pull request (no `requires:` on G) merged with the adapter's default.
    assert_eq!(world.fake.with(|g| g.pulls[0].merge_method.clone()).as_deref(), Some("merge"));
}

#[test]
fn a_week_without_faults_costs_twelve_requests() {
    let world = World::new();
    world.fake.with(|g| {
        g.computing_reads = 0;
        g.pull_mut(world.feature_pull).computing = 0;
    });
    let driver = run_week(&world);
    released(&driver);
    // Open V: list, create; each merge (G, X): list, read, reviews, mark, merge.
    assert_eq!(world.vcs.requests(), 12);
}

/// X requires the team lead's approval; frank (the team lead) approves on GitHub as `frank`.
fn requiring_the_team_lead(frank_on_github: &str) -> kars::workflow::driver::Program {
    program_with(&[
        (
            "action: { merge_pull_request: { from: dev, to: prod } }",
            "action: { merge_pull_request: { from: dev, to: prod, requires: { approved_by: [team_lead] } } }",
        ),
        (
            "frank: { name: Frank, roles: [team_lead, developer], logins: [frank] }",
            &format!(
                "frank: {{ name: Frank, roles: [team_lead, developer], logins: [frank], github: {frank_on_github} }}"
            ),
        ),
    ])
}

/// Every `done` entry of the journal whose effect failed.
fn failures(store: &MemoryStore) -> Vec<kars::workflow::driver::Failure> {
    let stored = store.read(&id()).unwrap();
    stored
        .records
        .iter()
        .filter_map(|bytes| match serde_json::from_slice::<kars::workflow::driver::Entry>(bytes).unwrap() {
            kars::workflow::driver::Entry::Done(done) => match done.status {
                kars::workflow::driver::EffectStatus::Failed(failure) => Some(failure),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_merge_that_requires_a_roles_approval_counts_the_review_of_the_roster_person_holding_it() {
    // The roster knows frank's GitHub login (GitHub ignores case): his approval is the team
    // lead's, and the week releases as usual.
    let world = World::new();
    let memory = Arc::new(MemoryStore::new());
    let program = requiring_the_team_lead("Frank");
    let mut driver = Driver::create(world.parts(Arc::clone(&memory)), &program, &id(), None).unwrap();
    for step in 0..WEEK.len() {
        act(&world, &mut driver, step);
    }
    driver.run_until(local("2026-11-30 12:00")).unwrap();
    released(&driver);
    assert_eq!(world.fake.count("merge"), 2);
    assert!(failures(&memory).is_empty());
}

#[test]
fn a_merge_without_the_required_roles_approval_is_refused_as_data_and_merges_nothing() {
    // The roster gives frank another GitHub login: the review by `frank` is nobody's on the
    // roster, so no team lead approved. X fails for good, its journal entry says why as data,
    // and the workflow goes on with X `failed`.
    let world = World::new();
    let memory = Arc::new(MemoryStore::new());
    let program = requiring_the_team_lead("frank-lead");
    let mut driver = Driver::create(world.parts(Arc::clone(&memory)), &program, &id(), None).unwrap();
    for step in 0..14 {
        act(&world, &mut driver, step);
    }
    driver.run_until(local("2026-11-30 10:05")).unwrap();
    assert_eq!(world.fake.count("merge"), 1, "only the feature pull request merged");
    assert!(world.fake.with(|g| g.open_from("kars-dev", "kars-prod")).is_some());
    let failed = failures(&memory);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let kars::workflow::driver::Failure::Unmet { adapter, unmet, detail, .. } = &failed[0] else {
        panic!("not an unmet-requirements failure: {:?}", failed[0]);
    };
    assert_eq!(adapter, "github");
    assert_eq!(unmet, &[kars::workflow::Unmet::RoleApproval { role: kars::spec::RoleId::new("team_lead").unwrap() }]);
    assert!(detail.contains("no approval by a holder of role `team_lead`"), "{detail}");
    // The refusal is permanent: one read of the reviews, no retries.
    assert_eq!(world.fake.count("reviews"), 2, "G's and X's reviews, once each");
    let ops: Vec<String> = world.ops.performed().into_iter().map(|o| o.node.to_string()).collect();
    assert_eq!(ops, ["H", "Y"], "the workflow routed X `failed` on to the deploy");
}
