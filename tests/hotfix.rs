//! The second bundled workflow, `workflows/hotfix.yaml` (parallel branches: QA, security and
//! the release notes at once, security as the first verdict of a scanner and a reviewer), checks,
//! renders and simulates a quarter through the command line, and its branches run side by side.

use std::sync::Arc;

use kars::workflow::{Event, Instance, InstanceId, Workflow};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/hotfix.yaml");

fn kars(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kars")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_bundled_hotfix_checks_renders_and_simulates_a_quarter() {
    assert!(kars(&["check", FILE]).contains("ok"));
    let picture = kars(&["render", FILE]);
    assert!(picture.starts_with("flowchart TB"), "{picture}");
    let run = kars(&["simulate", FILE, "--weeks", "13", "--start", "2026-11-30"]);
    assert!(run.starts_with("hotfix: 13 weeks from 2026-11-30"), "{run}");
    assert!(run.contains("summary of 13 weeks (2026-W49 to 2027-W08)"), "{run}");
    // Every week ends with one of the spec's outcomes, and some ship through all three branches.
    let weeks: Vec<&str> = run.lines().filter(|l| l.starts_with("202")).collect();
    assert_eq!(weeks.len(), 13, "{run}");
    for week in &weeks {
        let outcome = week.split_whitespace().nth(1).unwrap();
        assert!(["shipped", "no_hotfix", "blocked", "rolled_back"].contains(&outcome), "{week}");
    }
    assert!(weeks.iter().any(|w| w.contains(" shipped ")), "{run}");
}

/// After the pull request opens, QA, the security fork (scanner and reviewer) and the release
/// notes wait at once; the scanner's result does not wait for QA.
#[test]
fn the_sign_offs_wait_side_by_side() {
    let text = std::fs::read_to_string(FILE).unwrap();
    let workflow = Arc::new(Workflow::compile(&kars::spec::load(&text, "hotfix.yaml").unwrap()).unwrap());
    let monday = chrono::DateTime::parse_from_rfc3339("2026-11-29T22:00:00Z").unwrap().to_utc(); // Mon 09:00 Sydney
    let mut instance = Instance::start(workflow, InstanceId::new("hotfix").unwrap(), monday);
    let mut now = monday;
    let node = |id: &str| kars::spec::NodeId::new(id).unwrap();
    let person = |name: &str, role: &str| kars::workflow::Actor::new(name, vec![role.parse().unwrap()]);
    let steps: [(&str, Event); 3] = [
        ("Triage", Event::Complete { node: node("Triage"), actor: person("ines", "oncall"), outcome: None }),
        (
            "Needed",
            Event::Complete { node: node("Needed"), actor: person("mo", "oncall"), outcome: Some("yes".into()) },
        ),
        ("Fix", Event::Complete { node: node("Fix"), actor: person("jun", "developer"), outcome: None }),
    ];
    for (what, event) in steps {
        while let Some(at) = instance.poll_timeout().filter(|at| *at <= now) {
            instance.handle_timeout(at);
        }
        now += chrono::Duration::minutes(30);
        assert!(instance.handle_event(event, now).is_ok(), "{what}: {:?}", instance.waiting(now));
    }
    // The pull request's result (the driver would report it).
    let effects: Vec<_> = std::iter::from_fn(|| instance.poll_effect()).collect();
    let open = effects.iter().find(|e| e.node == node("OpenPR")).expect("the pull request is opened");
    let opened = Event::ActionResult {
        node: node("OpenPR"),
        outcome: kars::workflow::ActionOutcome::Succeeded,
        reporter: kars::workflow::Reporter::Effect { key: open.key.clone() },
    };
    assert!(instance.handle_event(opened, now).is_ok());
    let waiting = instance.waiting(now);
    let mut at: Vec<String> = instance.current_nodes().iter().map(ToString::to_string).collect();
    at.sort();
    assert_eq!(at, ["NotesOpen", "Review", "Scan", "Verify"], "{waiting:?}");
    assert_eq!(waiting.branches.len(), 3, "{waiting:?}");
}
