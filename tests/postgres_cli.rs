//! `kars instance … --store URL`: the same commands on a PostgreSQL store print what they print
//! on a journal directory, and `kars instance list` shows where each instance stands.
#![cfg(feature = "postgres")]

use std::process::Command;

use kars::workflow::journal::PgStore;

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");

/// Runs `kars` with `args` and `place` (`--journal DIR` or `--store URL --schema S`) appended.
fn kars(args: &[&str], place: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kars")).args(args).args(place).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn instance_commands_on_a_store_print_what_they_print_on_a_journal_directory() {
    let Some(db) = TestDb::new("cli") else { return };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j");
    let on_dir = ["--journal", journal.to_str().unwrap()];
    let on_store = ["--store", db.url.as_str(), "--schema", db.schema.as_str()];
    let id = ["--id", "kars-release"];
    let relabelled = dir.path().join("relabelled.yaml");
    let text = std::fs::read_to_string(SPEC)
        .unwrap()
        .replace("label: \"Developers Build\\nFeatures\"", "label: \"Developers Build\\nAll Features\"");
    assert!(text.contains("All Features"), "the relabel applies to the bundled spec");
    std::fs::write(&relabelled, text).unwrap();
    let relabelled = relabelled.to_str().unwrap().to_owned();
    let steps: Vec<(Vec<&str>, i32)> = vec![
        (vec!["instance", "start", SPEC, "--clock", "virtual", "--now", "2026-11-23T08:00:00-05:00"], 0),
        (
            vec![
                "instance",
                "act",
                id[0],
                id[1],
                "--node",
                "B",
                "--actor",
                "erin",
                "--now",
                "2026-11-23T09:00:00-05:00",
            ],
            0,
        ),
        // Refused: nothing written, exit 1.
        (
            vec![
                "instance",
                "act",
                id[0],
                id[1],
                "--node",
                "C",
                "--actor",
                "alice",
                "--now",
                "2026-11-23T09:30:00-05:00",
            ],
            1,
        ),
        (
            vec![
                "instance",
                "act",
                id[0],
                id[1],
                "--node",
                "C",
                "--actor",
                "frank",
                "--now",
                "2026-11-23T09:30:00-05:00",
            ],
            0,
        ),
        (vec!["instance", "tick", id[0], id[1], "--now", "2026-11-24T09:05:00-05:00"], 0),
        (vec!["instance", "status", id[0], id[1], "--now", "2026-11-24T09:06:00-05:00"], 0),
        // A spec upgrade: the plan, then a cosmetic change applied at once.
        (vec!["instance", "upgrade", id[0], id[1], &relabelled, "--dry-run", "--actor", "frank"], 0),
        (
            vec![
                "instance",
                "upgrade",
                id[0],
                id[1],
                &relabelled,
                "--actor",
                "frank",
                "--now",
                "2026-11-24T09:07:00-05:00",
            ],
            0,
        ),
        (vec!["instance", "history", id[0], id[1]], 0),
        (vec!["render", SPEC, id[0], id[1]], 0),
        (
            vec![
                "instance",
                "start",
                SPEC,
                "--id",
                "second",
                "--clock",
                "virtual",
                "--now",
                "2026-11-23T08:00:00-05:00",
            ],
            0,
        ),
        (vec!["instance", "list"], 0),
    ];
    for (args, code) in &steps {
        let (dir_code, dir_out, dir_err) = kars(args, &on_dir);
        let (store_code, store_out, store_err) = kars(args, &on_store);
        assert_eq!(dir_code, *code, "{args:?} on a directory: {dir_out}{dir_err}");
        assert_eq!(store_code, *code, "{args:?} on a store: {store_out}{store_err}");
        assert_eq!(store_out, dir_out, "{args:?}");
        assert_eq!(store_err, dir_err, "{args:?}");
    }
    let (_, list, _) = kars(&["instance", "list"], &on_store);
    assert_eq!(
        list,
        "ID            WORKFLOW      CLOCK      RELEASE   VERSION  AT   STANDS\n\
         kars-release  kars-release  rehearsal  2026-W48  6        `D`  waits for developer\n\
         second        kars-release  rehearsal  2026-W48  1        `B`  waits for product_manager or team_lead\n"
    );
}

#[test]
fn store_only_and_directory_only_options_say_what_to_use() {
    let Some(db) = TestDb::new("cli_usage") else { return };
    let on_store = ["--store", db.url.as_str(), "--schema", db.schema.as_str()];
    let (code, _, err) = kars(&["instance", "repair", "--id", "x"], &on_store);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: `kars instance repair` mends journal files"), "{err}");
    let (code, _, err) = kars(&["instance", "list", "--journal", "/nonexistent"], &on_store);
    assert_eq!(code, 2, "both places at once is a usage error: {err}");
    // Listing writes nothing: a schema no writer made yet is named, not created.
    let (code, _, err) = kars(&["instance", "list"], &on_store);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("schema `{}` holds no kars instances", db.schema)), "{err}");
    PgStore::connect(&db.url, &db.config()).unwrap();
    let (code, out, _) = kars(&["instance", "list"], &on_store);
    assert_eq!((code, out.as_str()), (0, "no instances\n"));
    let (code, _, err) = kars(&["instance", "list", "--store", "postgres://nobody@127.0.0.1:1/none"], &[]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: cannot reach PostgreSQL to open a connection: "), "{err}");
}

#[test]
fn a_worker_drives_a_due_real_instance_once_and_releases_it() {
    let Some(db) = TestDb::new("cli_worker") else { return };
    let on_store = ["--store", db.url.as_str(), "--schema", db.schema.as_str()];
    let (code, out, err) = kars(&["instance", "start", SPEC], &on_store);
    assert_eq!(code, 0, "{out}{err}");
    let instances = format!("\"{}\".instances", db.schema);
    let future = db.column_i64(&format!("SELECT count(*) FROM {instances} WHERE next_wake > now()"));
    assert_eq!(future, [1], "a real instance's next timer is recorded for replicas");
    let (code, out, _) = kars(&["worker", "--once"], &on_store);
    assert_eq!((code, out.as_str()), (0, ""), "nothing is due yet");

    // Make its timer due: one worker run claims it, ticks it and releases it.
    db.exec(&format!("UPDATE {instances} SET next_wake = now() - interval '1 minute'"));
    let (code, out, err) = kars(&["worker", "--once"], &on_store);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "drove `kars-release` (lease epoch 1)\n");
    assert!(err.starts_with("kars worker: replica `"), "{err}");
    let released = db.column_i64(&format!("SELECT count(*) FROM {instances} WHERE owner IS NULL AND epoch = 1"));
    assert_eq!(released, [1]);
    let (_, again, _) = kars(&["worker", "--once"], &on_store);
    assert_eq!(again, "", "released with its real next wake-up, it is not due again");
}
