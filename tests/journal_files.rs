//! The journal and the file system: read-only files, bounded lock waits, symbolic links, file
//! modes and leftovers of interrupted creates. Some tests re-run this test binary as a child
//! process (selected by an environment variable) to act as another process or another user.
#![cfg(unix)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use kars::workflow::InstanceId;
use kars::workflow::journal::{Durability, FileStore, FileStoreConfig, JournalError, Store};

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

fn config() -> FileStoreConfig {
    FileStoreConfig::default().with_durability(Durability::None).with_lock_timeout(Duration::from_millis(300))
}

/// A store without fsync and with a short lock timeout in `dir`, created if missing.
fn store_in(dir: &Path) -> FileStore {
    FileStore::create_dir(dir).unwrap().with_config(config())
}

/// Runs the test `name` of this binary as a child process with `env` set, as `user` if given.
fn child(name: &str, env: (&str, &str), as_nobody: bool) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut command = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    command.args([name, "--exact", "--nocapture", "--test-threads=1"]).env(env.0, env.1);
    command
}

/// The lock-holder child's environment variable: `shared:PATH` or `exclusive:PATH`.
const HOLDER_ENV: &str = "KARS_JOURNAL_LOCK_HOLDER";
const HOLDER_TEST: &str = "a_lock_held_by_another_process_bounds_the_wait_and_names_it";

/// A child process that holds a lock on `path` until it is killed.
struct Holder(Child);

impl Holder {
    fn spawn(kind: &str, path: &Path) -> Self {
        let spec = format!("{kind}:{}", path.display());
        let mut child = child(HOLDER_TEST, (HOLDER_ENV, &spec), false).stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().ends_with("locked")), "the lock holder did not start");
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold_lock(spec: &str) {
    let (kind, path) = spec.split_once(':').unwrap();
    let file = fs::File::open(path).unwrap();
    match kind {
        "shared" => file.lock_shared().unwrap(),
        _ => file.lock().unwrap(),
    }
    println!("locked");
    std::thread::sleep(Duration::from_secs(60));
}

/// A lock held by another process makes writers (and, for an exclusive lock, readers) give up
/// after the timeout with `Locked` naming that process; a shared lock never blocks readers.
#[test]
fn a_lock_held_by_another_process_bounds_the_wait_and_names_it() {
    if let Ok(spec) = std::env::var(HOLDER_ENV) {
        return hold_lock(&spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let j = id("j");
    store.create(&j, b"").unwrap();
    store.append(&j, 0, &[b"one"]).unwrap();

    let holder = Holder::spawn("exclusive", &store.path_of(&j));
    for result in [store.read(&j).map(|_| ()), store.version(&j).map(|_| ()), store.append(&j, 1, &[b"x"]).map(|_| ())]
    {
        match result {
            Err(JournalError::Locked { id, waited, holder: Some(who) }) => {
                assert_eq!(id, j);
                assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(30), "{waited:?}");
                assert_eq!(who.pid, holder.pid());
            }
            other => panic!("{other:?}"),
        }
    }
    let err = store.append(&j, 1, &[b"x"]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("the journal of instance `j` is locked by process {} (`", holder.pid())),
        "{message}"
    );
    assert!(message.contains("help: wait for it to finish and retry, or raise the lock timeout"), "{message}");
    drop(holder);
    assert_eq!(store.append(&j, 1, &[b"two"]).unwrap(), 2);

    let _reader = Holder::spawn("shared", &store.path_of(&j));
    assert_eq!(store.read(&j).unwrap().version, 2, "readers share the lock");
    assert!(matches!(store.append(&j, 2, &[b"x"]), Err(JournalError::Locked { .. })));
}

/// Two handles of one process exclude each other like two processes; the wait is bounded.
#[test]
fn a_lock_held_by_another_handle_of_this_process_bounds_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).with_config(config().with_lock_timeout(Duration::ZERO));
    let j = id("j");
    store.create(&j, b"").unwrap();
    let file = fs::File::open(store.path_of(&j)).unwrap();
    file.lock().unwrap();
    let err = store.read(&j).unwrap_err();
    let JournalError::Locked { holder: Some(holder), .. } = &err else { panic!("{err:?}") };
    assert_eq!(holder.pid, std::process::id());
    assert!(err.to_string().contains(", this process;"), "{err}");
    // Released during a wait: a writer in another thread gets it.
    let store = Arc::new(store.with_config(config().with_lock_timeout(Duration::from_secs(20))));
    let writer = {
        let (store, j) = (Arc::clone(&store), j.clone());
        std::thread::spawn(move || store.append(&j, 0, &[b"waited"]))
    };
    std::thread::sleep(Duration::from_millis(50));
    file.unlock().unwrap();
    assert_eq!(writer.join().unwrap().unwrap(), 1);
}

/// A journal path that is a symbolic link is refused by every operation, and the file it
/// points to is never changed (even though it has a torn tail a writer would cut).
#[test]
fn a_symlinked_journal_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let victim = id("victim");
    store.create(&victim, b"").unwrap();
    store.append(&victim, 0, &[b"a record"]).unwrap();
    let mut bytes = fs::read(store.path_of(&victim)).unwrap();
    bytes.extend_from_slice(b"torn");
    fs::write(store.path_of(&victim), &bytes).unwrap();
    let evil = id("evil");
    std::os::unix::fs::symlink(store.path_of(&victim), store.path_of(&evil)).unwrap();

    let results = [
        store.read(&evil).map(|_| ()),
        store.version(&evil).map(|_| ()),
        store.append(&evil, 1, &[b"x"]).map(|_| ()),
        store.append(&evil, 0, &[]).map(|_| ()),
        store.repair(&evil).map(|_| ()),
        store.create(&evil, b"").map(|_| ()),
    ];
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, JournalError::Symlink { id, path } if *id == evil && *path == store.path_of(&evil)),
            "{err:?}"
        );
        assert!(err.to_string().contains("is a symbolic link, which kars does not follow"), "{err}");
    }
    assert_eq!(fs::read(store.path_of(&victim)).unwrap(), bytes, "the target is untouched");
    assert!(store.take_tail_cuts().is_empty());
    // A dangling link is not followed to create a file either.
    let dangling = id("dangling");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), store.path_of(&dangling)).unwrap();
    assert!(matches!(store.create(&dangling, b""), Err(JournalError::Symlink { .. })));
    assert!(!dir.path().join("elsewhere").exists());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn directories_are_made_0700_and_files_0600() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("a").join("journal");
    let store = store_in(&dir);
    assert_eq!((mode(&work.path().join("a")), mode(&dir)), (0o700, 0o700));
    let j = id("j");
    store.create(&j, b"").unwrap();
    store.append(&j, 0, &[b"one"]).unwrap();
    assert_eq!(mode(&store.path_of(&j)), 0o600);
    let mut bytes = fs::read(store.path_of(&j)).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(store.path_of(&j), &bytes).unwrap();
    let backup = store.repair(&j).unwrap().backup.unwrap();
    assert_eq!(mode(&backup), 0o600);
    // An existing directory keeps its mode.
    let shared = work.path().join("shared");
    fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o750)).unwrap();
    store_in(&shared);
    assert_eq!(mode(&shared), 0o750);
}

#[test]
fn opening_never_creates_the_directory() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("missing");
    for result in [FileStore::open(&missing), FileStore::open_read_only(&missing)] {
        let err = result.unwrap_err();
        assert!(matches!(&err, JournalError::NoDirectory { dir } if *dir == missing), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "there is no journal directory `{}`\n\
                 help: check the path; a journal directory is created only when the first instance is created in it",
                missing.display()
            )
        );
    }
    assert!(!missing.exists());
    let file = work.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(matches!(FileStore::open(&file), Err(JournalError::Io { .. })));
}

/// The temporary-file child's environment variable: the temporary file to hold locked.
const TEMP_ENV: &str = "KARS_JOURNAL_TEMP_HOLDER";
const TEMP_TEST: &str = "leftovers_of_an_interrupted_create_are_removed_by_the_next_create_of_the_id";

/// A `create` removes the temporary files an interrupted `create` of the same id left, and
/// leaves alone other ids' files and the locked temporary file of a `create` in progress.
#[test]
fn leftovers_of_an_interrupted_create_are_removed_by_the_next_create_of_the_id() {
    if let Ok(path) = std::env::var(TEMP_ENV) {
        // A create in progress in another process: its temporary file exists and is locked.
        return hold_lock(&format!("exclusive:{path}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let leftovers = [".j.4000000-0.tmp", ".j.4000000-1.tmp"];
    let kept = [".j.2.4000000-0.tmp", ".k.4000000-0.tmp", ".j.notes.tmp", "j.tmp"];
    for name in leftovers.iter().chain(&kept) {
        fs::write(dir.path().join(name), b"KARSJRNL partial").unwrap();
    }
    let in_progress = dir.path().join(".j.4000001-0.tmp");
    fs::write(&in_progress, b"KARSJRNL being written").unwrap();
    let mut holder =
        child(TEMP_TEST, (TEMP_ENV, in_progress.to_str().unwrap()), false).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().ends_with("locked")));

    store.create(&id("j"), b"").unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    for name in leftovers {
        assert!(!dir.path().join(name).exists(), "{name} was left");
    }
    for name in kept {
        assert!(dir.path().join(name).exists(), "{name} was removed");
    }
    assert!(in_progress.exists(), "the temporary file of a create in progress was removed");
    // Once its creator is gone, it is a leftover too.
    store.create(&id("j.2"), b"").unwrap();
    assert!(!dir.path().join(".j.2.4000000-0.tmp").exists());
    fs::remove_file(store.path_of(&id("j"))).unwrap();
    store.create(&id("j"), b"").unwrap();
    assert!(!in_progress.exists());
    assert_eq!(temp_files(dir.path()), [".j.notes.tmp", ".k.4000000-0.tmp", "j.tmp"]);
}

fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// Handles racing to create the same instances (each cleaning leftovers first) never break
/// one another: exactly one create of each id wins, the others see `AlreadyExists`.
#[test]
fn racing_creates_of_one_id_never_break_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let threads = 4;
    let rounds = 60;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, dir) = (Arc::clone(&barrier), dir.path().to_path_buf());
            std::thread::spawn(move || {
                let store = store_in(&dir);
                (0..rounds)
                    .map(|round| {
                        barrier.wait();
                        match store.create(&id(&format!("r{round}")), b"") {
                            Ok(()) => 1,
                            Err(JournalError::AlreadyExists { .. }) => 0,
                            Err(e) => panic!("round {round}: {e}"),
                        }
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let wins: Vec<Vec<u32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for round in 0..rounds {
        assert_eq!(wins.iter().map(|w| w[round]).sum::<u32>(), 1, "round {round}");
    }
    assert!(temp_files(dir.path()).is_empty());
}

/// The racing child's environment variable: the journal directory to create instances in.
const RACE_ENV: &str = "KARS_JOURNAL_CREATE_RACE_DIR";
const RACE_TEST: &str = "racing_creates_in_several_processes_never_break_each_other";

/// Processes racing to create the same instances, in the same order, never break one another:
/// each id is won by exactly one process and no create fails otherwise.
#[test]
fn racing_creates_in_several_processes_never_break_each_other() {
    if let Ok(dir) = std::env::var(RACE_ENV) {
        let store = FileStore::open(&dir).unwrap().with_config(config());
        for round in 0..150 {
            match store.create(&id(&format!("r{round}")), b"") {
                Ok(()) => println!("\nwon r{round}"),
                Err(JournalError::AlreadyExists { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..3)
        .map(|_| {
            child(RACE_TEST, (RACE_ENV, dir.path().to_str().unwrap()), false).stdout(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let mut won = Vec::new();
    for c in children {
        let output = c.wait_with_output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{stdout}");
        won.extend(stdout.lines().filter_map(|l| l.strip_prefix("won r")?.parse::<u32>().ok()));
    }
    won.sort_unstable();
    assert_eq!(won, (0..150).collect::<Vec<_>>());
    assert!(temp_files(dir.path()).is_empty());
}

/// The reader child's environment variable: the read-only journal directory.
const READER_ENV: &str = "KARS_JOURNAL_READ_ONLY_DIR";
const READER_TEST: &str = "reads_work_on_read_only_files_and_directories_for_an_unprivileged_user";

/// The reader child: reads through a read-only and a read-write handle; writes fail.
fn read_only_child(dir: &str) {
    let j = id("j");
    for store in [FileStore::open_read_only(dir).unwrap(), FileStore::open(dir).unwrap()] {
        let stored = store.read(&j).unwrap();
        let version = store.version(&j).unwrap();
        let list = store.list().unwrap();
        let write = store.append(&j, version, &[b"x"]).unwrap_err();
        let write = match write {
            JournalError::ReadOnly { .. } => "read-only",
            JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => "denied",
            other => panic!("{other:?}"),
        };
        let list: Vec<String> = list.iter().map(ToString::to_string).collect();
        println!("read {} version {version} list {} append {write}", stored.records.len(), list.join(","));
    }
}

/// A journal file 0444 in a directory 0555, with a torn tail, reads for another user through
/// read-only and read-write handles; nothing changes, and writes fail with a typed error.
#[test]
fn reads_work_on_read_only_files_and_directories_for_an_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(dir) = std::env::var(READER_ENV) {
        return read_only_child(&dir);
    }
    let work = tempfile::tempdir().unwrap();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir: PathBuf = work.path().join("journal");
    let store = store_in(&dir);
    let j = id("j");
    store.create(&j, b"header").unwrap();
    store.append(&j, 0, &[b"one", b"two"]).unwrap();
    let path = store.path_of(&j);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[7, 0, 0]);
    fs::write(&path, &bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();

    // Root ignores permissions, so the reader runs as `nobody`.
    let as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let output = child(READER_TEST, (READER_ENV, dir.to_str().unwrap()), as_root).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("read 2 version 2 list j append read-only\n"), "{stdout}");
    assert!(stdout.contains("read 2 version 2 list j append denied\n"), "{stdout}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "the file is unchanged");
    assert_eq!((mode(&path), mode(&dir)), (0o444, 0o555));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
}
