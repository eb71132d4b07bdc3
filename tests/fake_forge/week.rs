//! A KARS week driven through the GitHub adapter against the fake GitHub: the world (the
//! fake, the adapter, a virtual clock), the scripted week, and what people do on GitHub at its
//! steps. Shared by `tests/forge_week.rs` and `benches/forge_week.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::workflow::Event;
use kars::workflow::InstanceId;
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::adapter::forge::{Dispatch, ForgeConfig, ForgeToken, GitHubActions, GitHubVcs, MergeRules};
use kars::workflow::driver::{
    Adapters, Driver, DriverConfig, Parts, Program, RecordingOperations, RetryPolicy, Roster, VirtualClock,
};
use kars::workflow::journal::{JournalError, MemoryStore, Store, Stored};

use super::github::{self, GitHub};
use super::{FakeForge, TIMEOUT, TOKEN};

const SPEC: &str = include_str!("../../workflows/kars-release.yaml");

/// The bundled spec with `edit` applied (`(from, to)` text replacements), compiled.
pub fn program_with(edits: &[(&str, &str)]) -> Program {
    let mut yaml = SPEC.to_owned();
    for (from, to) in edits {
        assert!(yaml.contains(from), "the spec has no `{from}`");
        yaml = yaml.replace(from, to);
    }
    Program::new(&kars::spec::load(&yaml, "kars-release.yaml").unwrap()).unwrap()
}

pub fn program() -> Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| Program::new(&kars::spec::load(SPEC, "kars-release.yaml").unwrap()).unwrap()).clone()
}

pub fn roster() -> &'static Roster {
    static ROSTER: OnceLock<Roster> = OnceLock::new();
    ROSTER.get_or_init(|| Roster::from_spec(kars::spec::load(SPEC, "kars-release.yaml").unwrap().spec()))
}

/// A local Toronto time (`2026-11-23 09:00`) as UTC.
pub fn local(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}

pub fn id() -> InstanceId {
    InstanceId::new("kars").unwrap()
}

/// A store that fails (as a crash would: nothing written) the first append after `armed`
/// turns true, then behaves.
#[derive(Clone)]
pub struct CrashOnce {
    pub inner: Arc<MemoryStore>,
    pub armed: Arc<dyn Fn() -> bool + Send + Sync>,
    pub crashed: Arc<AtomicBool>,
}

impl Store for CrashOnce {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        self.inner.create(id, header)
    }
    fn append(&self, id: &InstanceId, expected: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        if (self.armed)() && !self.crashed.swap(true, Ordering::SeqCst) {
            let source = std::io::Error::other("simulated crash");
            return Err(JournalError::Io { path: "memory".into(), source });
        }
        self.inner.append(id, expected, records)
    }
    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        self.inner.read(id)
    }
    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        self.inner.list()
    }
}

pub struct World {
    pub fake: FakeForge<GitHub>,
    pub vcs: Arc<GitHubVcs>,
    pub ops: Arc<RecordingOperations>,
    pub clock: Arc<VirtualClock>,
    pub feature_pull: u64,
    /// Deploys and checks through GitHub Actions instead of `ops`, when set.
    pub actions: Option<Arc<GitHubActions>>,
}

impl World {
    pub fn new() -> Self {
        let fake = github::start(30);
        let feature_pull = fake.with(|g| {
            // GitHub computes mergeability lazily: the first read of every pull is `null`.
            g.computing_reads = 1;
            g.push("feature/login");
            g.open_pull("feature/login", "kars-dev")
        });
        let token = ForgeToken::new(TOKEN, "a test").unwrap();
        let config = ForgeConfig::github("keydatalab/kars", token)
            .with_api(fake.url())
            .with_rules(MergeRules::default())
            .with_timeout(TIMEOUT);
        Self {
            fake,
            vcs: Arc::new(GitHubVcs::new(config).unwrap()),
            ops: Arc::new(RecordingOperations::new()),
            clock: Arc::new(VirtualClock::new(local("2026-11-23 08:00"))),
            feature_pull,
            actions: None,
        }
    }

    /// The same world, with deploys, rollbacks and checks dispatched to GitHub Actions
    /// (`deploy.yml` on `main`, runs completing after two polls 5 ms apart).
    pub fn with_actions() -> Self {
        let mut world = Self::new();
        world.fake.with(|g| g.run_polls = 2);
        let token = ForgeToken::new(TOKEN, "a test").unwrap();
        let config = ForgeConfig::github("keydatalab/kars", token).with_api(world.fake.url()).with_timeout(TIMEOUT);
        let dispatch = Dispatch {
            poll: std::time::Duration::from_millis(5),
            wait: std::time::Duration::from_secs(5),
            ..Dispatch::new("deploy.yml", "main")
        };
        world.actions = Some(Arc::new(GitHubActions::new(config, dispatch).unwrap()));
        world
    }

    pub fn parts<S: Store>(&self, store: S) -> Parts<S, Arc<VirtualClock>> {
        let adapters = Adapters::new(RecordingNotifier::new()).with_vcs(Arc::clone(&self.vcs));
        let adapters = match &self.actions {
            Some(actions) => adapters.with_operations(Arc::clone(actions)),
            None => adapters.with_operations(Arc::clone(&self.ops)),
        };
        let config = DriverConfig {
            retry: RetryPolicy {
                max_attempts: 4,
                base: std::time::Duration::from_secs(1),
                cap: std::time::Duration::from_secs(4),
            },
            ..DriverConfig::default()
        };
        Parts { store, clock: Arc::clone(&self.clock), adapters, config }
    }

    /// What people do on GitHub at a step: bob approves the feature pull request when he
    /// approves in kars (F); frank approves the dev → prod pull request (W).
    pub fn on_github(&self, node: &str) {
        match node {
            "F" => self.fake.with(|g| g.review(self.feature_pull, "bob", "APPROVED")),
            "W" => self.fake.with(|g| {
                let number = g.open_from("kars-dev", "kars-prod").expect("V opened the dev → prod pull request");
                g.review(number, "frank", "APPROVED");
            }),
            _ => {}
        }
    }
}

pub const WEEK: [(&str, &str, &str, Option<&str>); 16] = [
    ("2026-11-23 09:00", "B", "erin", None),
    ("2026-11-23 09:30", "C", "frank", None),
    ("2026-11-24 10:00", "D", "alice", None),
    ("2026-11-25 10:00", "E", "alice", None),
    ("2026-11-25 14:00", "F", "bob", Some("approved")),
    ("2026-11-26 17:30", "I", "erin", None),
    ("2026-11-26 18:00", "K", "erin", None),
    ("2026-11-27 09:30", "L", "carol", None),
    ("2026-11-27 10:00", "M", "dave", None),
    ("2026-11-27 11:00", "N", "carol", Some("Yes")),
    ("2026-11-27 14:00", "Q", "carol", None),
    ("2026-11-27 14:30", "R", "erin", None),
    ("2026-11-30 09:50", "U", "dave", None),
    ("2026-11-30 09:55", "W", "frank", Some("approved")),
    ("2026-11-30 10:10", "Z", "dave", None),
    ("2026-11-30 10:30", "AE", "erin", None),
];

pub fn act<S: Store>(world: &World, driver: &mut Driver<S, Arc<VirtualClock>>, step: usize) {
    let (at, node, person, outcome) = WEEK[step];
    driver.run_until(local(at)).unwrap();
    world.on_github(node);
    let event = Event::Complete {
        node: kars::spec::NodeId::new(node).unwrap(),
        actor: roster().actor(person).unwrap(),
        outcome: outcome.map(Into::into),
    };
    driver.handle_event(event).unwrap();
    driver.run_effects().unwrap();
}

pub fn released<S: Store>(driver: &Driver<S, Arc<VirtualClock>>) {
    let instance = driver.instance();
    let cycles = instance.cycle_outcomes();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].outcome, "released");
    assert_eq!(instance.release().as_str(), "2026-W49");
    assert_eq!(driver.pending_effects().count(), 0);
}

/// The whole week on a fresh world: the driver at its end (Monday noon).
pub fn run_week(world: &World) -> Driver<Arc<MemoryStore>, Arc<VirtualClock>> {
    let mut driver = Driver::create(world.parts(Arc::new(MemoryStore::new())), &program(), &id(), None).unwrap();
    for step in 0..WEEK.len() {
        act(world, &mut driver, step);
    }
    driver.run_until(local("2026-11-30 12:00")).unwrap();
    driver
}
