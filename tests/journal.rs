//! The journal: store semantics, crash safety (truncation, bit flips, SIGKILL) and concurrency.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Barrier};

use kars::workflow::journal::{Corruption, Durability, FileStore, FileStoreConfig, JournalError, MemoryStore, Store};
use kars::workflow::{InstanceId, InstanceIdRule};
use proptest::prelude::*;

/// A small deterministic generator (SplitMix64) so every run checks the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Record `i` of every test journal: its content and length vary with `i`.
fn record(i: u64) -> Vec<u8> {
    let mut r = format!("record-{i}:").into_bytes();
    r.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, (i * 7 % 61) as usize));
    r
}

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

fn no_sync() -> FileStoreConfig {
    FileStoreConfig::default().with_durability(Durability::None)
}

/// A store without fsync in `dir`, created if missing.
fn store_in(dir: &Path) -> FileStore {
    FileStore::create_dir(dir).unwrap().with_config(no_sync())
}

/// Writes records `0..n` one append at a time and returns the file's bytes and each frame's start.
fn build_journal(dir: &Path, n: u64) -> (Vec<u8>, Vec<usize>) {
    let store = store_in(dir);
    let j = id("j");
    store.create(&j, b"the header").unwrap();
    let mut starts = Vec::new();
    for i in 0..n {
        starts.push(fs::metadata(store.path_of(&j)).unwrap().len() as usize);
        assert_eq!(store.append(&j, i, &[&record(i)]).unwrap(), i + 1);
    }
    (fs::read(store.path_of(&j)).unwrap(), starts)
}

fn assert_store_semantics(store: &dyn Store) {
    let a = id("a");
    assert!(matches!(store.read(&a), Err(JournalError::NotFound { .. })));
    assert!(matches!(store.append(&a, 0, &[b"x"]), Err(JournalError::NotFound { .. })));
    store.create(&a, b"hdr").unwrap();
    assert!(matches!(store.create(&a, b"other"), Err(JournalError::AlreadyExists { .. })));
    assert_eq!(store.append(&a, 0, &[]).unwrap(), 0);
    assert_eq!(store.append(&a, 0, &[b"one", b"", b"three"]).unwrap(), 3);
    let err = store.append(&a, 1, &[b"late"]).unwrap_err();
    assert!(matches!(err, JournalError::Conflict { expected: 1, actual: 3, .. }), "{err}");
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        "another writer advanced instance `a` to version 3 (this append expected version 1)"
    );
    assert!(matches!(store.append(&a, 3, &[]), Ok(3)));
    assert!(matches!(store.append(&a, 4, &[]), Err(JournalError::Conflict { expected: 4, actual: 3, .. })));
    let stored = store.read(&a).unwrap();
    assert_eq!(stored.header, b"hdr");
    assert_eq!(stored.records, [b"one".to_vec(), vec![], b"three".to_vec()]);
    assert_eq!(stored.version, 3);
    assert_eq!(store.version(&a).unwrap(), 3);
    store.create(&id("b.2"), b"").unwrap();
    assert_eq!(store.list().unwrap(), [id("a"), id("b.2")]);
}

#[test]
fn file_store_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    assert_store_semantics(&store);
    // A second handle sees the same data.
    let again = FileStore::open(dir.path()).unwrap();
    assert_eq!(again.read(&id("a")).unwrap().records.len(), 3);
    // Files that are not journals are not listed.
    fs::write(dir.path().join(".a.123-0.tmp"), b"x").unwrap();
    fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    assert_eq!(again.list().unwrap(), [id("a"), id("b.2")]);
}

#[test]
fn memory_store_semantics() {
    assert_store_semantics(&MemoryStore::new());
}

#[test]
fn oversized_records_and_headers_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::open(dir.path()).unwrap().with_config(no_sync().with_max_record_len(8));
    let memory = MemoryStore::with_max_record_len(8);
    for store in [&file as &dyn Store, &memory] {
        let err = store.create(&id("big"), &[0; 9]).unwrap_err();
        assert!(matches!(err, JournalError::TooLarge { index: None, len: 9, max: 8, .. }), "{err}");
        store.create(&id("j"), b"").unwrap();
        let err = store.append(&id("j"), 0, &[b"ok", b"123456789"]).unwrap_err();
        assert_eq!(err.to_string(), "record 1 of the append for instance `j` is 9 bytes, over the limit of 8 bytes");
        assert_eq!(store.version(&id("j")).unwrap(), 0, "a refused append writes nothing");
    }
}

#[test]
fn instance_ids_cannot_escape_the_directory() {
    use InstanceIdRule::*;
    for (bad, rule) in [("../x", BadStart), ("a/b", BadCharacter), ("", Empty), (".x", BadStart), ("a..b", DoubleDot)] {
        assert_eq!(InstanceId::new(bad).map_err(|e| e.rule), Err(rule), "{bad}");
        let err: JournalError = InstanceId::new(bad).unwrap_err().into();
        assert!(matches!(err, JournalError::InvalidId(_)), "{bad}: {err}");
    }
}

/// Truncating the journal at any byte past its file header reads as exactly the records whose
/// frames are complete without changing the file; the next append cuts the rest, reports the
/// cut, and succeeds.
#[test]
fn truncation_anywhere_yields_the_complete_prefix() {
    let work = tempfile::tempdir().unwrap();
    let (bytes, starts) = build_journal(&work.path().join("src"), 40);
    let header_end = starts[0];
    let mut offsets: Vec<usize> = (starts[starts.len() - 5]..=bytes.len()).collect();
    let mut rng = Rng(7);
    offsets.extend((0..3000).map(|_| rng.below(bytes.len() as u64 + 1) as usize));
    let dir = work.path().join("cut");
    fs::create_dir(&dir).unwrap();
    // Each case gets a new file: rewriting one file would make ext4 flush it on every close.
    let store = store_in(&dir);
    for (case, cut) in offsets.into_iter().enumerate() {
        let j = id(&format!("c{case}"));
        fs::write(store.path_of(&j), &bytes[..cut]).unwrap();
        let read = store.read(&j);
        if cut < header_end {
            // The file header is written atomically, so a short one is corruption, not a tear.
            assert!(matches!(read, Err(JournalError::Corrupt { .. })), "cut at {cut}: {read:?}");
            continue;
        }
        let complete = starts.iter().skip(1).chain([&bytes.len()]).take_while(|&&end| end <= cut).count();
        let stored = read.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(stored.header, b"the header");
        assert_eq!(stored.version, complete as u64, "cut at {cut}");
        for (i, r) in stored.records.iter().enumerate() {
            assert_eq!(r, &record(i as u64), "cut at {cut}");
        }
        assert_eq!(fs::read(store.path_of(&j)).unwrap(), &bytes[..cut], "cut at {cut}: a read changed the file");
        let frame_end = if complete == 40 { bytes.len() } else { starts[complete] };
        assert_eq!(store.append(&j, complete as u64, &[b"next"]).unwrap(), complete as u64 + 1);
        let cuts = store.take_tail_cuts();
        if frame_end < cut {
            assert_eq!(cuts.len(), 1, "cut at {cut}: {cuts:?}");
            assert_eq!((&cuts[0].id, cuts[0].offset, cuts[0].bytes), (&j, frame_end as u64, (cut - frame_end) as u64));
        } else {
            assert!(cuts.is_empty(), "cut at {cut}: a whole frame boundary is no tear: {cuts:?}");
        }
        assert_eq!(store.read(&j).unwrap().records.last().unwrap(), b"next");
    }
}

/// Flipping any one bit of a journal makes reads and appends fail with `Corrupt` at or before
/// the flipped byte, and leaves the file unchanged: no record is dropped silently, not even the
/// last one.
#[test]
fn every_bit_flip_is_detected() {
    let work = tempfile::tempdir().unwrap();
    let (small, small_starts) = build_journal(&work.path().join("small"), 8);
    let (large, large_starts) = build_journal(&work.path().join("large"), 300);
    let dir = work.path().join("flip");
    fs::create_dir(&dir).unwrap();
    let mut cases: Vec<(&[u8], &[usize], usize)> =
        (0..small.len() * 8).map(|bit| (&small[..], &small_starts[..], bit)).collect();
    let mut rng = Rng(11);
    cases.extend((0..3000).map(|_| (&large[..], &large_starts[..], rng.below(large.len() as u64 * 8) as usize)));
    let store = store_in(&dir);
    let mut last_frame = 0;
    for (case, (bytes, starts, bit)) in cases.into_iter().enumerate() {
        let mut damaged = bytes.to_vec();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let j = id(&format!("c{case}"));
        fs::write(store.path_of(&j), &damaged).unwrap();
        for (what, result) in
            [("read", store.read(&j).map(|s| s.version)), ("append", store.append(&j, starts.len() as u64, &[b"x"]))]
        {
            match result {
                Err(JournalError::Corrupt { offset, .. }) => {
                    assert!(
                        offset as usize <= bit / 8,
                        "{what}: the damage at byte {} is reported at {offset}",
                        bit / 8
                    );
                }
                other => panic!("bit {bit}: {what} returned {other:?}"),
            }
        }
        assert_eq!(fs::read(store.path_of(&j)).unwrap(), damaged, "bit {bit}: the file changed");
        last_frame += usize::from(bit / 8 >= starts[starts.len() - 1]);
    }
    assert!(last_frame > 100, "only {last_frame} flips hit the last frame");
}

#[test]
fn corruption_reports_where_and_what() {
    let work = tempfile::tempdir().unwrap();
    let (mut bytes, starts) = build_journal(&work.path().join("src"), 5);
    bytes[starts[2] + 13] ^= 0x40; // a payload byte of record 2
    let dir = work.path().join("bad");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("j.journal"), &bytes).unwrap();
    let store = FileStore::open(&dir).unwrap();
    let err = store.read(&id("j")).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { offset, reason: Corruption::PayloadChecksum { index: 2 }, .. } if *offset as usize == starts[2]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string().lines().next().unwrap(),
        format!("the journal of instance `j` is corrupt at byte {}: record 2 fails its checksum", starts[2])
    );
    assert!(matches!(store.append(&id("j"), 5, &[b"x"]), Err(JournalError::Corrupt { .. })), "appends refuse too");
    fs::write(dir.join("k.journal"), b"PK\x03\x04 not a journal").unwrap();
    let err = store.read(&id("k")).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { offset: 0, reason: Corruption::BadMagic, .. }), "{err:?}");
}

/// A zero-filled tail (space allocated, never written) is a tear: readers leave it, writers cut it.
#[test]
fn a_zero_filled_tail_is_cut_by_writers_only() {
    let work = tempfile::tempdir().unwrap();
    let (mut bytes, _) = build_journal(&work.path().join("src"), 3);
    let len = bytes.len();
    bytes.extend_from_slice(&[0; 4096]);
    let dir = work.path().join("z");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("j.journal"), &bytes).unwrap();
    let store = FileStore::open(&dir).unwrap().with_config(no_sync());
    assert_eq!(store.read(&id("j")).unwrap().version, 3);
    assert_eq!(store.version(&id("j")).unwrap(), 3);
    assert_eq!(fs::read(dir.join("j.journal")).unwrap(), bytes, "readers change nothing");
    assert!(store.take_tail_cuts().is_empty());
    assert_eq!(store.append(&id("j"), 3, &[]).unwrap(), 3);
    assert_eq!(fs::metadata(dir.join("j.journal")).unwrap().len() as usize, len);
    let cuts = store.take_tail_cuts();
    assert_eq!(cuts.len(), 1);
    assert_eq!((cuts[0].offset, cuts[0].bytes), (len as u64, 4096));
    assert_eq!(
        cuts[0].to_string(),
        format!(
            "cut a torn tail of 4096 bytes at byte {len} from the journal of instance `j` (an append that was interrupted before it was acknowledged)"
        )
    );
    assert!(store.take_tail_cuts().is_empty(), "cuts are reported once");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any records, any grouping into appends and any truncation point past the file
    /// header, a read returns exactly the records whose frames are complete.
    #[test]
    fn any_truncation_reads_a_prefix(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..12),
        group in 1usize..4,
        cut_frac in 0.0f64..=1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let j = id("p");
        store.create(&j, b"h").unwrap();
        let mut version = 0;
        for chunk in records.chunks(group) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            version = store.append(&j, version, &refs).unwrap();
        }
        let path = store.path_of(&j);
        let bytes = fs::read(&path).unwrap();
        let header_end = 21;
        let cut = header_end + ((bytes.len() - header_end) as f64 * cut_frac) as usize;
        fs::write(&path, &bytes[..cut]).unwrap();
        let stored = store_in(dir.path()).read(&j).unwrap();
        let mut end = header_end;
        let complete = records.iter().take_while(|r| { end += 12 + r.len(); end <= cut }).count();
        prop_assert_eq!(&stored.records[..], &records[..complete]);
    }
}

/// Two handles that both saw version 0 race to append: exactly one wins.
#[test]
fn the_second_writer_of_a_version_gets_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::open(dir.path()).unwrap();
    let b = FileStore::open(dir.path()).unwrap();
    let j = id("j");
    a.create(&j, b"").unwrap();
    assert!(matches!(b.create(&j, b""), Err(JournalError::AlreadyExists { .. })));
    assert_eq!(a.version(&j).unwrap(), 0);
    assert_eq!(b.version(&j).unwrap(), 0);
    assert_eq!(a.append(&j, 0, &[b"from a"]).unwrap(), 1);
    assert!(matches!(b.append(&j, 0, &[b"from b"]), Err(JournalError::Conflict { expected: 0, actual: 1, .. })));
    assert_eq!(b.append(&j, 1, &[b"from b"]).unwrap(), 2);
    assert_eq!(a.read(&j).unwrap().records, [b"from a".to_vec(), b"from b".to_vec()]);
}

/// Threads racing to append with expected versions claim every version exactly once, and the
/// journal holds each winner's record at the version it claimed.
fn race(stores: Vec<Arc<dyn Store>>, threads: usize, target: u64) {
    let j = id("race");
    stores[0].create(&j, b"").unwrap();
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&stores[t % stores.len()]);
            let (barrier, j) = (Arc::clone(&barrier), j.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut won = Vec::new();
                loop {
                    let v = store.version(&j).unwrap();
                    if v >= target {
                        return won;
                    }
                    let payload = format!("t{t}-v{}", v + 1).into_bytes();
                    match store.append(&j, v, &[&payload]) {
                        Ok(new) => {
                            assert_eq!(new, v + 1);
                            won.push((new, payload));
                        }
                        Err(JournalError::Conflict { actual, .. }) => assert!(actual > v),
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut won: Vec<(u64, Vec<u8>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    won.sort();
    assert_eq!(won.iter().map(|w| w.0).collect::<Vec<_>>(), (1..=target).collect::<Vec<_>>());
    for store in &stores {
        let stored = store.read(&j).unwrap();
        assert_eq!(stored.version, target);
        let expected: Vec<Vec<u8>> = won.iter().map(|w| w.1.clone()).collect();
        assert_eq!(stored.records, expected);
    }
}

#[test]
fn racing_threads_on_two_file_handles_claim_each_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let a: Arc<dyn Store> = Arc::new(store_in(dir.path()));
    let b: Arc<dyn Store> = Arc::new(store_in(dir.path()));
    race(vec![a, b], 4, 300);
}

#[test]
fn racing_threads_on_a_memory_store_claim_each_version_once() {
    race(vec![Arc::new(MemoryStore::new())], 4, 2000);
}

/// The child's environment variable: the journal directory to append to.
const CHILD_ENV: &str = "KARS_JOURNAL_KILL_CHILD_DIR";
/// The name of the test that doubles as the child.
const KILL_TEST: &str = "sigkill_at_random_moments_loses_no_acknowledged_record";

/// The child: appends batches of 1 to 3 records with fsync, printing each acknowledged version.
fn kill_child(dir: &str) {
    let store = FileStore::open(dir).unwrap();
    let j = id("kill");
    let mut out = std::io::stdout().lock();
    let mut version = store.version(&j).unwrap();
    for _ in 0..100_000 {
        let batch: Vec<Vec<u8>> = (version..version + 1 + version % 3).map(record).collect();
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        version = store.append(&j, version, &refs).unwrap();
        if writeln!(out, "ack {version}").and_then(|()| out.flush()).is_err() {
            return; // The parent is gone.
        }
    }
}

/// Every version a child acknowledged before SIGKILL is in the journal, in order and intact,
/// and the journal reads cleanly after every kill.
#[cfg(unix)]
#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return kill_child(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let j = id("kill");
    FileStore::open(dir.path()).unwrap().create(&j, b"kill test").unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(42);
    let mut acked = 0u64;
    for round in 0..300 {
        let mut child = Command::new(&exe)
            .args([KILL_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = rng.below(6);
        let mut seen = 0;
        while seen < wait_for {
            let Some(line) = lines.next() else { break };
            if let Some(v) = line.unwrap().strip_prefix("ack ") {
                acked = acked.max(v.parse().unwrap());
                seen += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(rng.below(3000)));
        child.kill().unwrap();
        // Acknowledgements printed before the kill count too.
        for line in lines {
            if let Some(v) = line.unwrap().strip_prefix("ack ") {
                acked = acked.max(v.parse().unwrap());
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "round {round}: the child ended on its own: {status}");
        let stored = FileStore::open(dir.path()).unwrap().read(&j).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(stored.version >= acked, "round {round}: acknowledged {acked}, found {}", stored.version);
        for (i, r) in stored.records.iter().enumerate() {
            assert_eq!(r, &record(i as u64), "round {round}: record {i}");
        }
    }
    assert!(acked > 300, "the children acknowledged only {acked} versions");
}
