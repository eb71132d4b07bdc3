//! Mermaid both ways: the KARS spec renders to the seed's graph, the seed imports to a valid
//! skeleton, `import(render(spec))` keeps the graph, and the importer's errors read well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use kars::spec::mermaid::{self, Flowchart, Lanes, RenderOptions, Shape, Shapes, StateView};
use kars::spec::{NodeId, Spec};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn kars_spec() -> Spec {
    kars::spec::load(&read("workflows/kars-release.yaml"), "kars-release.yaml").expect("bundled spec loads").into_spec()
}

const SEED: &str = "tests/fixtures/mermaid/kars-release-workflow.md";

/// The graph of a flowchart, element by element, for comparisons with readable diffs.
#[derive(Debug, PartialEq, Eq)]
struct Graph {
    nodes: Vec<(String, String, Shape)>,
    subgraphs: Vec<(String, Option<String>, Vec<String>)>,
    edges: Vec<(String, String, Option<String>)>,
    styles: BTreeMap<String, BTreeMap<String, String>>,
}

fn graph(chart: &Flowchart) -> Graph {
    Graph {
        nodes: chart.nodes.iter().map(|(id, n)| (id.clone(), n.label.clone(), n.shape)).collect(),
        subgraphs: chart.subgraphs.iter().map(|s| (s.id.clone(), s.title.clone(), s.nodes.clone())).collect(),
        edges: chart.edges.iter().map(|e| (e.from.clone(), e.to.clone(), e.label.clone())).collect(),
        styles: chart.styles.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

#[test]
fn seed_copy_matches_shared_seed() {
    let shared = root().join("../shared/seeds/kars-release-workflow.md");
    if shared.exists() {
        let shared = std::fs::read(&shared).expect("read shared seed");
        let copy = std::fs::read(root().join(SEED)).expect("read fixture seed");
        assert!(
            shared == copy,
            "tests/fixtures/mermaid/kars-release-workflow.md differs from ../shared/seeds; copy it again"
        );
    }
}

#[test]
fn kars_spec_renders_to_the_seed_graph() {
    let seed = mermaid::parse(&read(SEED)).expect("seed parses");
    let rendered = mermaid::render(&kars_spec(), &RenderOptions::default());
    let back = mermaid::parse(&rendered).expect("rendering parses");
    let (want, got) = (graph(&seed.flowchart), graph(&back.flowchart));
    assert_eq!(got.nodes, want.nodes, "node ids, labels and shapes");
    assert_eq!(got.subgraphs, want.subgraphs, "subgraph ids, titles and members");
    assert_eq!(got.edges, want.edges, "edges with labels");
    assert_eq!(got.styles, want.styles, "styles");
    assert_eq!(back.flowchart.direction, seed.flowchart.direction);
    assert_eq!(want.nodes.len(), 33);
    assert_eq!(want.edges.len(), 34);
    assert_eq!(want.subgraphs[1].2, ["D", "E", "F", "G", "H"], "mermaid's rule: C stays in Week");
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
}

#[test]
fn kars_renderings_are_snapshotted() {
    let spec = kars_spec();
    insta::assert_snapshot!("kars_plain", mermaid::render(&spec, &RenderOptions::default()));
    let annotated = RenderOptions { annotate: true, ..RenderOptions::default() };
    insta::assert_snapshot!("kars_annotated", mermaid::render(&spec, &annotated));
    let lanes = RenderOptions { lanes: Lanes::Roles, shapes: Shapes::ByKind, ..RenderOptions::default() };
    insta::assert_snapshot!("kars_lanes", mermaid::render(&spec, &lanes));
    let ids = |ids: &[&str]| ids.iter().map(|i| NodeId::new(*i).expect("id")).collect::<Vec<_>>();
    let state = StateView {
        current: ids(&["U"]),
        visited: ids(&["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "Q", "R", "S", "T"]),
        waiting: Some("gate opens Mon 09:45".to_owned()),
        ..StateView::default()
    };
    insta::assert_snapshot!("kars_instance", mermaid::render_state(&spec, &RenderOptions::default(), &state));
}

fn hotfix_spec() -> Spec {
    kars::spec::load(&read("workflows/hotfix.yaml"), "hotfix.yaml").expect("bundled spec loads").into_spec()
}

fn ids(list: &[&str]) -> Vec<NodeId> {
    list.iter().map(|i| NodeId::new(*i).expect("id")).collect()
}

/// The hotfix midway through its sign-offs: QA, the scan, the security review and the notes
/// each wait.
fn hotfix_state() -> StateView {
    StateView {
        current: ids(&["Verify", "Scan", "Review", "NotesOpen"]),
        visited: ids(&["A", "Triage", "Needed", "Fix", "OpenPR", "SignOffs", "Security"]),
        waiting: Some("sign-offs".to_owned()),
        waiting_at: [
            ("Verify", "QA Wed 17:00"),
            ("Scan", "security-scan result"),
            ("NotesOpen", "gate opens Tue 09:00"),
        ]
        .into_iter()
        .map(|(id, text)| (NodeId::new(id).expect("id"), text.to_owned()))
        .collect(),
    }
}

#[test]
fn hotfix_renderings_are_snapshotted() {
    let spec = hotfix_spec();
    insta::assert_snapshot!("hotfix_plain", mermaid::render(&spec, &RenderOptions::default()));
    let all = RenderOptions { annotate: true, lanes: Lanes::Phases, shapes: Shapes::ByKind };
    insta::assert_snapshot!("hotfix_annotated", mermaid::render(&spec, &all));
    let overlay = mermaid::render_state(&spec, &RenderOptions::default(), &hotfix_state());
    // Every running branch is current, each with what it waits for.
    assert!(overlay.contains("    class Verify,Scan,Review,NotesOpen kars_current\n"), "{overlay}");
    assert!(overlay.contains("Verify[\"QA verifies the fix<br/><b>⏳ QA Wed 17:00</b>\"]"), "{overlay}");
    assert!(overlay.contains("Review[\"Security review<br/><b>⏳ sign-offs</b>\"]"), "{overlay}");
    insta::assert_snapshot!("hotfix_instance", overlay);
}

#[test]
fn hotfix_rendering_imports_back_with_its_forks_and_joins() {
    let spec = hotfix_spec();
    for shapes in [Shapes::Plain, Shapes::ByKind] {
        let text = mermaid::render(&spec, &RenderOptions { shapes, ..RenderOptions::default() });
        let outcome = mermaid::import(&text).expect("imports");
        assert_eq!(spec_graph(&outcome.spec), spec_graph(&spec), "{text}");
        // Tasks, actions and waits all come back as tasks; forks, joins, decisions and ends
        // come back as what they were.
        use kars::spec::spec::NodeKind as K;
        let kinds = |s: &Spec| {
            s.nodes
                .iter()
                .filter(|(_, n)| matches!(n.kind, K::Parallel | K::Join | K::Decision | K::End | K::Start))
                .map(|(id, n)| (id.to_string(), n.kind))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(kinds(&outcome.spec), kinds(&spec), "{text}");
        let checked = kars::spec::check(outcome.spec).unwrap_or_else(|r| panic!("{r}"));
        let pairs: Vec<(String, String)> =
            checked.forks().iter().map(|(f, b)| (f.to_string(), b.join.to_string())).collect();
        assert_eq!(pairs, [("SignOffs".into(), "AllSignedOff".into()), ("Security".into(), "SecurityOk".into())]);
    }
}

#[test]
fn rendering_is_deterministic() {
    let spec = kars_spec();
    let options = RenderOptions { annotate: true, lanes: Lanes::Roles, shapes: Shapes::ByKind };
    assert_eq!(mermaid::render(&spec, &options), mermaid::render(&spec.clone(), &options));
}

#[test]
fn instance_overlay_marks_current_visited_and_path() {
    let spec = kars_spec();
    let state = StateView {
        current: vec![NodeId::new("C").expect("id")],
        visited: vec![NodeId::new("A").expect("id"), NodeId::new("B").expect("id")],
        waiting: None,
        ..StateView::default()
    };
    let text = mermaid::render_state(&spec, &RenderOptions::default(), &state);
    assert!(text.contains("    class A,B kars_visited\n"), "{text}");
    assert!(text.contains("    class C kars_current\n"), "{text}");
    assert!(text.contains("    linkStyle 0,1 stroke:"), "edges A->B and B->C: {text}");
    let note = StateView { waiting: Some("next cycle".into()), ..StateView::default() };
    let text = mermaid::render_state(&spec, &RenderOptions::default(), &note);
    assert!(text.contains("kars_waiting([\"⏳ next cycle\"])"), "{text}");
    assert!(mermaid::parse(&text).is_ok());
}

#[test]
fn seed_imports_to_a_valid_skeleton() {
    let outcome = mermaid::import(&read(SEED)).expect("seed imports");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let yaml = mermaid::to_yaml(&outcome.spec);
    let loaded = kars::spec::load(&yaml, "imported.yaml").expect("the skeleton loads and checks");
    assert_eq!(loaded.spec(), &outcome.spec);
    let kinds = |id: &str| outcome.spec.nodes.get(id).map(|n| n.kind);
    use kars::spec::spec::NodeKind;
    assert_eq!(kinds("A"), Some(NodeKind::Start));
    assert_eq!(kinds("N"), Some(NodeKind::Decision));
    assert_eq!(kinds("AC"), Some(NodeKind::End));
    assert_eq!(outcome.spec.nodes.get("AG").and_then(|n| n.outcome.as_deref()), Some("done"), "AG leads back to A");
    assert_eq!(outcome.spec.title.as_deref(), Some("Complete Release Workflow - KARS"));
    insta::assert_snapshot!("seed_import", yaml);
}

#[test]
fn kars_import_output_passes_kars_check() {
    // `kars import SEED | kars check -`, as a real pipe between the two processes.
    let mut import = Command::new(env!("CARGO_BIN_EXE_kars"))
        .arg("import")
        .arg(root().join(SEED))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run kars import");
    let pipe = import.stdout.take().expect("import's stdout");
    let check =
        Command::new(env!("CARGO_BIN_EXE_kars")).args(["check", "-"]).stdin(pipe).output().expect("run kars check -");
    assert!(import.wait().expect("kars import ends").success());
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&check.stdout), "<stdin>: ok\n");
}

#[test]
fn kars_render_reads_stdin_and_import_reports_errors() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(["render", "--lanes", "roles", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run kars render");
    child.stdin.take().expect("stdin").write_all(read("workflows/kars-release.yaml").as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("subgraph role_qa[\"QA Team\"]"));
    let bad = root().join("tests/fixtures/mermaid/errors/circle-edge.mmd");
    let out = Command::new(env!("CARGO_BIN_EXE_kars")).arg("import").arg(&bad).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("circle-edge.mmd:3:7") && stderr.contains("(circle and cross links)"), "{stderr}");
}

#[test]
fn syntax_tour_imports() {
    let text = read("tests/fixtures/mermaid/syntax.mmd");
    let parsed = mermaid::parse(&text).expect("parses");
    let chart = &parsed.flowchart;
    let shape = |id: &str| chart.nodes.get(id).map(|n| n.shape);
    assert_eq!(shape("A"), Some(Shape::Stadium));
    assert_eq!(shape("D"), Some(Shape::Rhombus));
    assert_eq!(shape("K"), Some(Shape::ParallelogramAlt));
    assert_eq!(shape("L"), Some(Shape::Trapezoid));
    assert_eq!(shape("M"), Some(Shape::TrapezoidAlt));
    assert_eq!(shape("Q"), Some(Shape::DoubleCircle));
    assert_eq!(chart.nodes.get("N").map(|n| n.label.as_str()), Some("Quoted \"label\" with # and ; | [] {} ()"));
    assert_eq!(chart.nodes.get("O").map(|n| n.label.as_str()), Some("Line one\nline two\nline three\nfour"));
    assert_eq!(chart.nodes.get("P").map(|n| n.label.as_str()), Some("markdown string"));
    let edge =
        |from: &str, to: &str| chart.edges.iter().find(|e| e.from == from && e.to == to).map(|e| e.label.clone());
    assert_eq!(edge("D", "E"), Some(Some("yes".into())));
    assert_eq!(edge("D", "F"), Some(Some("no way".into())));
    assert_eq!(edge("H", "I"), Some(Some("dotted text".into())));
    assert_eq!(edge("I", "J"), Some(Some("thick label".into())));
    assert_eq!(edge("L", "N"), Some(None));
    assert_eq!(edge("M", "N"), Some(None));
    assert_eq!(edge("P", "Q"), Some(None), "the invisible link adds no edge");
    assert_eq!(chart.edges.iter().filter(|e| e.from == "P").count(), 1);
    let sub = |id: &str| chart.subgraphs.iter().find(|s| s.id == id).map(|s| (s.title.clone(), s.nodes.clone()));
    assert_eq!(sub("Outer"), Some((Some("Outer title".into()), vec!["R".into()])));
    assert_eq!(sub("Inner"), Some((Some("Inner title".into()), vec!["S".into()])));
    assert_eq!(sub("QuotedOnlyTitle"), Some((Some("Quoted only title".into()), vec!["T".into()])));
    assert_eq!(sub("Untitled"), Some((None, vec!["U".into()])));
    assert_eq!(chart.styles.get("B"), None, "class styles stay in their class");
    let hot = chart.classes.get("hot").expect("classDef hot");
    assert_eq!(hot.style.get("fill").map(String::as_str), Some("#f96"));
    assert_eq!(hot.nodes, ["B", "C"]);
    assert_eq!(chart.styles.get("A").and_then(|s| s.get("stroke-width")).map(String::as_str), Some("4px"));
    let outcome = mermaid::import(&text).expect("imports");
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    let yaml = mermaid::to_yaml(&outcome.spec);
    kars::spec::load(&yaml, "syntax.yaml").expect("the skeleton loads");
    insta::assert_snapshot!("syntax_import", format!("{}\n---\n{yaml}", warnings.join("\n")));
}

/// Charts that real mermaid draws but whose first reading did not make a valid spec: several
/// roots, a first node that branches, a root mentioned last; and classes kept as classes.
#[test]
fn import_fixtures_pass_kars_check_and_round_trip() {
    insta::glob!("fixtures/mermaid/imports/*.mmd", |path| {
        let text = std::fs::read_to_string(path).expect("read fixture");
        let outcome = mermaid::import(&text).expect("imports");
        let yaml = mermaid::to_yaml(&outcome.spec);
        let checked = kars::spec::load(&yaml, "imported.yaml").unwrap_or_else(|r| panic!("{r}\n{yaml}"));
        assert_eq!(checked.spec(), &outcome.spec);
        // Rendering and importing again gives back the same spec, classes included.
        let again = mermaid::import(&mermaid::render(&outcome.spec, &RenderOptions::default())).expect("imports again");
        // Node order may change: a rendering declares the nodes outside every phase first.
        let ids = |spec: &Spec| spec.nodes.keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(ids(&again.spec), ids(&outcome.spec));
        assert_eq!(again.spec.phases, outcome.spec.phases);
        assert_eq!(again.spec.edges, outcome.spec.edges);
        assert_eq!(again.spec.classes, outcome.spec.classes);
        let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(format!("{}\n---\n{yaml}", warnings.join("\n")));
    });
}

#[test]
fn kars_import_reports_the_added_start_and_the_skeleton_checks() {
    let import = Command::new(env!("CARGO_BIN_EXE_kars"))
        .arg("import")
        .arg(root().join("tests/fixtures/mermaid/imports/several-roots.mmd"))
        .output()
        .expect("run kars import");
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(stderr.contains("start node `start` and decision `which` are added before them"), "{stderr}");
    let mut check = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(["check", "--strict", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run kars check");
    std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), &import.stdout).expect("write");
    let out = check.wait_with_output().expect("kars check ends");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<stdin>: ok\n");
    assert!(out.status.success());
}

#[test]
fn an_added_start_leads_to_every_root() {
    let text = read("tests/fixtures/mermaid/imports/several-roots.mmd");
    let spec = mermaid::import(&text).expect("imports").spec;
    use kars::spec::spec::NodeKind;
    let kind = |id: &str| spec.nodes.get(id).map(|n| n.kind);
    assert_eq!((kind("start"), kind("which")), (Some(NodeKind::Start), Some(NodeKind::Decision)));
    let from_which: Vec<(&str, Option<&str>)> =
        spec.edges.iter().filter(|e| e.from.as_str() == "which").map(|e| (e.to.as_str(), e.label.as_deref())).collect();
    assert_eq!(from_which, [("Feature", Some("Feature")), ("Hotfix", Some("Hotfix"))]);
    // A first node that branches keeps its place; the edge back to it begins the next cycle.
    let spec = mermaid::import(&read("tests/fixtures/mermaid/imports/branching-first.mmd")).expect("imports").spec;
    // Its unlabelled ways out meet again at Retro: a fork and its join.
    assert_eq!(spec.nodes.get("Plan").map(|n| n.kind), Some(NodeKind::Parallel));
    assert_eq!(spec.nodes.get("Retro").map(|n| n.kind), Some(NodeKind::Join));
    assert!(spec.edges.iter().any(|e| e.from.as_str() == "Retro" && e.to.as_str() == "start"));
    assert_eq!(spec.nodes.get("Retro").and_then(|n| n.outcome.as_deref()), Some("done"));
}

#[test]
fn importer_errors() {
    insta::glob!("fixtures/mermaid/errors/*", |path| {
        let text = std::fs::read_to_string(path).expect("read fixture");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let error = mermaid::import(&text).expect_err("the fixture is refused");
        insta::assert_snapshot!(error.excerpt(name, &text));
    });
}

mod arb {
    //! Generators of small valid specs with hostile labels.

    use kars::spec::spec::{DecidedBy, Edge, Node, NodeKind, Phase, Role, Spec};
    use kars::spec::{NodeId, PhaseId, RoleId};
    use proptest::prelude::*;

    pub const PIECES: &[&str] = &[
        "\"",
        "[",
        "]",
        "{",
        "}",
        "(",
        ")",
        "#",
        "#quot;",
        "#35;",
        "#x;",
        "|",
        ";",
        "<",
        ">",
        "&",
        "`",
        "é",
        "日本",
        "😀",
        "end",
        "subgraph",
        "style",
        "classDef",
        "graph",
        ":",
        "-->",
        "---",
        "==>",
        "-.-",
        "%%",
        "<br/>",
        "<br>",
        "\n",
        " ",
        "\t",
        "a",
        "Word",
        "/",
        "\\",
        "~~~",
        ":::",
        "o",
        "x",
        "&amp;",
        "@{",
        "\u{2028}",
        "\u{A0}",
        "\u{FEFF}",
        "\r",
        "\u{0}",
        "'",
        "*",
        "→",
        "click",
        "direction TB",
        "%%{init}%%",
        "\"\"",
        "A-->B",
    ];

    pub fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z ]{0,12}",
            proptest::collection::vec(proptest::sample::select(PIECES), 1..6).prop_map(|v| v.concat()),
            "\\PC{1,10}",
        ]
    }

    fn id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z0-9_]{0,4}",
            proptest::sample::select(
                &["o", "x", "v", "end1", "Endx", "style1", "graph2", "classDefX", "e1", "subgraphA", "End", "Style"][..]
            )
            .prop_map(str::to_owned),
        ]
        .prop_filter("valid node id", |s| NodeId::new(s.clone()).is_ok())
    }

    fn style() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
        let color =
            proptest::sample::select(&["#fff", "#c8e6c9", "#4caf50", "red", "#FFCDD2"][..]).prop_map(str::to_owned);
        proptest::collection::btree_map(
            proptest::sample::select(&["fill", "stroke", "color", "stroke-width"][..]).prop_map(str::to_owned),
            color,
            0..3,
        )
    }

    #[derive(Debug, Clone)]
    struct Plan {
        ids: Vec<String>,
        labels: Vec<String>,
        decision: Vec<bool>,
        targets: Vec<usize>,
        yes: Vec<String>,
        no: Vec<String>,
        plain: Vec<Option<String>>,
        phase_of: Vec<usize>,
        titles: Vec<Option<String>>,
        styles: Vec<std::collections::BTreeMap<String, String>>,
    }

    pub fn spec() -> impl Strategy<Value = Spec> {
        (2usize..7)
            .prop_flat_map(|n| {
                (
                    proptest::collection::btree_set(id(), n),
                    proptest::collection::vec(label(), n),
                    proptest::collection::vec(any::<bool>(), n),
                    proptest::collection::vec(0..n, n),
                    proptest::collection::vec(label(), n),
                    proptest::collection::vec(label(), n),
                    proptest::collection::vec(proptest::option::of(label()), n),
                    proptest::collection::vec(0usize..4, n),
                    proptest::collection::vec(proptest::option::of(label()), 3),
                    proptest::collection::vec(style(), n),
                )
            })
            .prop_map(|(ids, labels, decision, targets, yes, no, plain, phase_of, titles, styles)| {
                build(Plan {
                    ids: ids.into_iter().collect(),
                    labels,
                    decision,
                    targets,
                    yes,
                    no,
                    plain,
                    phase_of,
                    titles,
                    styles,
                })
            })
    }

    fn build(plan: Plan) -> Spec {
        let n = plan.ids.len();
        let id = |i: usize| NodeId::new(plan.ids[i].clone()).expect("generated ids are valid");
        let role = RoleId::new("owner").expect("role");
        let mut spec = Spec::new("generated", "UTC");
        let edges = &mut spec.edges;
        for i in 0..n {
            let kind = if i == 0 {
                NodeKind::Start
            } else if i == n - 1 {
                NodeKind::End
            } else if plan.decision[i] {
                NodeKind::Decision
            } else {
                NodeKind::Task
            };
            match kind {
                NodeKind::End => {}
                NodeKind::Decision => {
                    let yes = non_empty(&plan.yes[i]);
                    let mut no = non_empty(&plan.no[i]);
                    if no == yes {
                        no.push('!');
                    }
                    edges.push(Edge { from: id(i), to: id(i + 1), label: Some(yes) });
                    edges.push(Edge { from: id(i), to: id(plan.targets[i]), label: Some(no) });
                }
                _ => {
                    let label = plan.plain[i].as_deref().map(non_empty);
                    edges.push(Edge { from: id(i), to: id(i + 1), label });
                }
            }
            let node = Node {
                style: plan.styles[i].clone(),
                roles: if kind == NodeKind::Task { vec![role.clone()] } else { Vec::new() },
                decided_by: (kind == NodeKind::Decision).then(|| DecidedBy {
                    role: Some(role.clone()),
                    outcome_of: None,
                    map: Default::default(),
                }),
                outcome: (kind == NodeKind::End).then(|| "done".to_owned()),
                ..Node::new(plan.labels[i].clone(), kind)
            };
            spec.nodes.insert(id(i), node);
        }
        for p in 0..3 {
            let members: Vec<NodeId> = (0..n).filter(|&i| plan.phase_of[i] == p).map(id).collect();
            if !members.is_empty() {
                let title = plan.titles[p].as_deref().map(non_empty);
                spec.phases
                    .insert(PhaseId::new(format!("Phase_{p}")).expect("phase id"), Phase { title, nodes: members });
            }
        }
        spec.roles.insert(role, Role { title: "Owner".into(), responsibilities: Vec::new() });
        spec
    }

    fn non_empty(s: &str) -> String {
        if s.is_empty() { "_".to_owned() } else { s.to_owned() }
    }
}

/// A spec's graph: labels by id, edges with labels, phases with titles and members, styles.
type SpecGraph = (
    BTreeMap<String, String>,
    Vec<(String, String, Option<String>)>,
    Vec<(String, Option<String>, Vec<String>)>,
    BTreeMap<String, BTreeMap<String, String>>,
);

/// The graph of a spec as the importer should give it back.
fn spec_graph(spec: &Spec) -> SpecGraph {
    (
        spec.nodes.iter().map(|(id, n)| (id.to_string(), n.label.clone())).collect(),
        spec.edges.iter().map(|e| (e.from.to_string(), e.to.to_string(), e.label.clone())).collect(),
        spec.phases
            .iter()
            .map(|(id, p)| (id.to_string(), p.title.clone(), p.nodes.iter().map(ToString::to_string).collect()))
            .collect(),
        spec.nodes
            .iter()
            .filter(|(_, n)| !n.style.is_empty())
            .map(|(id, n)| (id.to_string(), n.style.clone()))
            .collect(),
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Importing the rendering of any valid spec gives back its node ids, labels, edges with
    /// labels, phases and styles, and decisions are exactly the `{}` nodes.
    #[test]
    fn import_of_render_keeps_the_graph(spec in arb::spec()) {
        let text = mermaid::render(&spec, &RenderOptions::default());
        let parsed = mermaid::parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}")))?;
        for (id, node) in &parsed.flowchart.nodes {
            let decision = spec.nodes.get(id.as_str()).map(|n| n.kind) == Some(kars::spec::spec::NodeKind::Decision);
            proptest::prop_assert_eq!(node.shape == Shape::Rhombus, decision, "{}\n{}", id, text);
        }
        let outcome = mermaid::import(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}\n{text}")))?;
        proptest::prop_assert_eq!(spec_graph(&outcome.spec), spec_graph(&spec), "{}", text);
    }

    /// The importer returns a result, never panics, on any text.
    #[test]
    fn import_never_panics_on_random_text(text in "\\PC{0,200}", prefix in proptest::bool::ANY) {
        let text = if prefix { format!("flowchart TB\n{text}") } else { text };
        let _ = mermaid::import(&text);
    }

    /// The importer returns a result, never panics, on random edits of the seed.
    #[test]
    fn import_never_panics_on_seed_mutations(
        edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), 0u8..3, proptest::sample::select(arb::PIECES)), 1..8)
    ) {
        let mut chars: Vec<char> = read(SEED).chars().collect();
        for (at, op, piece) in edits {
            let i = at.index(chars.len() + 1);
            match op {
                0 => { chars.splice(i..i, piece.chars()); }
                1 => { let end = (i + piece.len()).min(chars.len()); chars.drain(i..end); }
                _ => { if i < chars.len() { chars[i] = piece.chars().next().unwrap_or('x'); } }
            }
        }
        let text: String = chars.into_iter().collect();
        if let Ok(outcome) = mermaid::import(&text) {
            // Whatever imports renders again to something that imports.
            let again = mermaid::render(&outcome.spec, &RenderOptions::default());
            proptest::prop_assert!(mermaid::import(&again).is_ok(), "{}", again);
        }
    }
}

/// Hand-made specs whose labels and ids poke at mermaid's lexer.
fn hostile_specs() -> Vec<Spec> {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arb::spec();
    (0..60).filter_map(|_| strategy.new_tree(&mut runner).ok().map(|t| t.current())).collect()
}

#[test]
fn mermaid_js_accepts_renderings() {
    let js = root().join("tests/mermaid-js");
    let required = std::env::var("KARS_REQUIRE_MERMAID_JS").is_ok_and(|v| v == "1");
    if !js.join("node_modules").exists() && !required {
        eprintln!("mermaid-js not installed (npm ci --prefix tests/mermaid-js); skipping the real-mermaid check");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kars = kars_spec();
    let mut files: Vec<(PathBuf, Option<Spec>)> = Vec::new();
    let mut write = |name: String, text: String, spec: Option<Spec>| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        files.push((path, spec));
    };
    write("kars.mmd".into(), mermaid::render(&kars, &RenderOptions::default()), Some(kars.clone()));
    let all = RenderOptions { annotate: true, lanes: Lanes::Roles, shapes: Shapes::ByKind };
    write("kars-all.mmd".into(), mermaid::render(&kars, &all), None);
    let state = StateView {
        current: vec![NodeId::new("Q").expect("id")],
        visited: ["A", "B", "C"].iter().map(|i| NodeId::new(*i).expect("id")).collect(),
        waiting: Some("deadline Fri 15:00 | \"soon\"; <b>".into()),
        ..StateView::default()
    };
    write("kars-state.mmd".into(), mermaid::render_state(&kars, &all, &state), None);
    let hotfix = hotfix_spec();
    write("hotfix.mmd".into(), mermaid::render(&hotfix, &RenderOptions::default()), Some(hotfix.clone()));
    write("hotfix-all.mmd".into(), mermaid::render(&hotfix, &all), None);
    write("hotfix-state.mmd".into(), mermaid::render_state(&hotfix, &all, &hotfix_state()), None);
    write("syntax.mmd".into(), read("tests/fixtures/mermaid/syntax.mmd"), None);
    // The seed's own block, checked against what the importer makes of it: this holds the
    // importer's subgraph membership rule to mermaid's.
    let seed = read(SEED);
    let block = seed.split("```mermaid\n").nth(1).and_then(|b| b.split("\n```").next()).expect("seed block").to_owned();
    let imported = mermaid::import(&seed).expect("seed imports").spec;
    write("seed.mmd".into(), block, Some(imported));
    for entry in std::fs::read_dir(root().join("tests/fixtures/mermaid/imports")).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let spec = mermaid::import(&text).expect("imports").spec;
        // Mermaid reads the original as drawn; the rendering of the import as the spec says.
        write(format!("original-{name}"), text, None);
        write(format!("imported-{name}"), mermaid::render(&spec, &RenderOptions::default()), Some(spec));
    }
    for (i, spec) in hostile_specs().into_iter().enumerate() {
        write(format!("hostile-{i}.mmd"), mermaid::render(&spec, &RenderOptions::default()), Some(spec.clone()));
        write(format!("hostile-{i}-annotated.mmd"), mermaid::render(&spec, &all), None);
    }
    let out = Command::new("node")
        .arg(js.join("check.mjs"))
        .args(files.iter().map(|(p, _)| p))
        .output()
        .expect("node runs (install node 20+ and run `npm ci --prefix tests/mermaid-js`)");
    assert!(out.status.success(), "check.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("check.mjs prints JSON");
    assert_eq!(results.len(), files.len());
    for (result, (path, spec)) in results.iter().zip(&files) {
        let text = std::fs::read_to_string(path).expect("read");
        assert_eq!(result["ok"], true, "mermaid rejects {}: {}\n{text}", path.display(), result["error"]);
        if let Some(spec) = spec {
            check_mermaid_graph(result, spec, &text);
        }
    }
}

/// Compares the graph real mermaid built with the spec that was rendered. Subgraph members are
/// compared as sets: mermaid lists the nodes of `A --> B` as `B, A`.
fn check_mermaid_graph(result: &serde_json::Value, spec: &Spec, text: &str) {
    let str_of = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let empty = Vec::new();
    let vertices = result["vertices"].as_array().unwrap_or(&empty);
    let labels: BTreeMap<String, String> =
        vertices.iter().filter_map(|v| Some((str_of(&v["id"])?, str_of(&v["label"])?))).collect();
    let want: BTreeMap<String, String> = spec.nodes.iter().map(|(id, n)| (id.to_string(), n.label.clone())).collect();
    assert_eq!(labels, want, "labels as mermaid reads them\n{text}");
    for v in vertices {
        let id = str_of(&v["id"]).unwrap_or_default();
        let decision = spec.nodes.get(id.as_str()).map(|n| n.kind) == Some(kars::spec::spec::NodeKind::Decision);
        assert_eq!(v["type"] == "diamond", decision, "shape of {id}\n{text}");
        let styles: Vec<String> = v["styles"].as_array().unwrap_or(&empty).iter().filter_map(str_of).collect();
        let want: Vec<String> = spec
            .nodes
            .get(id.as_str())
            .map(|n| n.style.iter().map(|(k, v)| format!("{k}:{v}")).collect())
            .unwrap_or_default();
        assert_eq!(styles, want, "styles of {id}\n{text}");
        let classes: Vec<String> = v["classes"].as_array().unwrap_or(&empty).iter().filter_map(str_of).collect();
        let want: Vec<String> = spec
            .classes
            .iter()
            .filter(|(_, c)| !c.style.is_empty() && c.nodes.iter().any(|n| n.as_str() == id))
            .map(|(class, _)| class.to_string())
            .collect();
        assert_eq!(classes, want, "classes of {id}\n{text}");
    }
    let edges: Vec<(String, String, Option<String>)> = result["edges"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|e| (str_of(&e["from"]).unwrap_or_default(), str_of(&e["to"]).unwrap_or_default(), str_of(&e["label"])))
        .collect();
    let want: Vec<(String, String, Option<String>)> =
        spec.edges.iter().map(|e| (e.from.to_string(), e.to.to_string(), e.label.clone())).collect();
    assert_eq!(edges, want, "edges as mermaid reads them\n{text}");
    let subgraphs: Vec<(String, Option<String>, Vec<String>)> = result["subgraphs"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|s| {
            let mut nodes: Vec<String> = s["nodes"].as_array().unwrap_or(&empty).iter().filter_map(str_of).collect();
            nodes.sort();
            (str_of(&s["id"]).unwrap_or_default(), str_of(&s["title"]), nodes)
        })
        .collect();
    let want: Vec<(String, Option<String>, Vec<String>)> = spec
        .phases
        .iter()
        .map(|(id, p)| {
            let mut nodes: Vec<String> = p.nodes.iter().map(ToString::to_string).collect();
            nodes.sort();
            (id.to_string(), Some(p.title.clone().unwrap_or_else(|| id.to_string())), nodes)
        })
        .collect();
    assert_eq!(subgraphs, want, "subgraphs as mermaid reads them\n{text}");
}
