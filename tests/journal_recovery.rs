//! The journal's recovery rules: torn tails against corruption, repair, byte caps on read, and
//! journals written by earlier builds.

use std::fs;
use std::path::Path;

use kars::workflow::InstanceId;
use kars::workflow::journal::{Corruption, Durability, FileStore, FileStoreConfig, JournalError, Store};

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

/// A store without fsync in `dir`, created if missing.
fn store_in(dir: &Path) -> FileStore {
    FileStore::create_dir(dir).unwrap().with_config(FileStoreConfig::default().with_durability(Durability::None))
}

/// Writes instance `j` with records `r0..r{n}` one append each; returns the store, the file's
/// bytes and each frame's start.
fn journal(dir: &Path, n: u64) -> (FileStore, Vec<u8>, Vec<usize>) {
    let store = store_in(dir);
    let j = id("j");
    store.create(&j, b"the header").unwrap();
    let mut starts = Vec::new();
    for i in 0..n {
        starts.push(fs::metadata(store.path_of(&j)).unwrap().len() as usize);
        store.append(&j, i, &[format!("record {i} of the journal").as_bytes()]).unwrap();
    }
    let bytes = fs::read(store.path_of(&j)).unwrap();
    (store, bytes, starts)
}

#[test]
fn a_journal_written_by_format_1_still_reads_and_is_written_the_same_way() {
    let fixture = fs::read("tests/fixtures/journal/format-1.journal").unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("format-1.journal"), &fixture).unwrap();
    let store = FileStore::open_read_only(dir.path()).unwrap();
    let stored = store.read(&id("format-1")).unwrap();
    assert_eq!(stored.header, br#"{"fixture":"journal format version 1"}"#);
    assert_eq!(stored.records, [b"first record".to_vec(), vec![], br#"{"third":[1,2,3]}"#.to_vec()]);
    assert_eq!(stored.version, 3);
    // Today's writer produces the same bytes for the same appends: the format is unchanged.
    let again = store_in(&dir.path().join("again"));
    let j = id("format-1");
    again.create(&j, br#"{"fixture":"journal format version 1"}"#).unwrap();
    again.append(&j, 0, &[b"first record", b""]).unwrap();
    again.append(&j, 2, &[br#"{"third":[1,2,3]}"#]).unwrap();
    assert_eq!(fs::read(again.path_of(&j)).unwrap(), fixture);
}

/// A flipped byte in the last, complete frame is corruption for every operation, and nothing
/// but `repair` changes the file.
#[test]
fn a_flipped_byte_in_the_last_full_frame_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut bytes, starts) = journal(dir.path(), 5);
    let j = id("j");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(store.path_of(&j), &bytes).unwrap();
    let expected = |err: JournalError| {
        assert!(
            matches!(&err, JournalError::Corrupt { offset, reason: Corruption::PayloadChecksum { index: 4 }, .. } if *offset as usize == starts[4]),
            "{err:?}"
        );
        err
    };
    let err = expected(store.read(&j).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!(
            "the journal of instance `j` is corrupt at byte {at}: record 4 fails its checksum\n\
             help: this is not a torn last write, so no record is dropped silently; `kars instance repair` \
             (`FileStore::repair`) backs the file up and then cuts it at byte {at}, losing the records from there on",
            at = starts[4]
        )
    );
    expected(FileStore::open(dir.path()).unwrap().version(&j).unwrap_err());
    expected(FileStore::open(dir.path()).unwrap().append(&j, 5, &[b"more"]).unwrap_err());
    expected(store.append(&j, 5, &[b"more"]).unwrap_err());
    expected(store.append(&j, 4, &[b"instead"]).unwrap_err());
    assert_eq!(fs::read(store.path_of(&j)).unwrap(), bytes, "the file is unchanged");
    assert!(store.take_tail_cuts().is_empty());
}

/// A torn tail (a frame shorter than its length, or a partial frame header) is ignored by
/// readers, which change nothing, and cut and reported by the next writer.
#[test]
fn a_torn_tail_is_ignored_by_readers_and_cut_by_writers() {
    for torn_len in [5usize, 12 + 3] {
        let dir = tempfile::tempdir().unwrap();
        let (store, bytes, starts) = journal(dir.path(), 5);
        let j = id("j");
        let torn = &bytes[..starts[4] + torn_len];
        fs::write(store.path_of(&j), torn).unwrap();
        let reader = FileStore::open_read_only(dir.path()).unwrap();
        for s in [&store, &reader] {
            let stored = s.read(&j).unwrap();
            assert_eq!(stored.version, 4);
            assert_eq!(stored.records[3], b"record 3 of the journal");
            assert_eq!(s.version(&j).unwrap(), 4);
        }
        assert_eq!(fs::read(store.path_of(&j)).unwrap(), torn, "readers change nothing");
        assert!(store.take_tail_cuts().is_empty() && reader.take_tail_cuts().is_empty());
        assert_eq!(store.append(&j, 4, &[b"after the tear"]).unwrap(), 5);
        let cuts = store.take_tail_cuts();
        assert_eq!(cuts.len(), 1);
        assert_eq!((&cuts[0].id, cuts[0].offset, cuts[0].bytes), (&j, starts[4] as u64, torn_len as u64));
        assert_eq!(reader.read(&j).unwrap().records[4], b"after the tear");
    }
}

#[test]
fn repair_backs_up_then_cuts_at_the_first_bad_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut bytes, starts) = journal(dir.path(), 5);
    let j = id("j");
    let path = store.path_of(&j);
    bytes[starts[2] + 14] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(store.read(&j), Err(JournalError::Corrupt { .. })));

    let report = store.repair(&j).unwrap();
    assert_eq!(report.records_kept, 2);
    assert_eq!(report.cut_at as usize, starts[2]);
    assert_eq!(report.bytes_removed as usize, bytes.len() - starts[2]);
    assert_eq!(report.damage, Some(Corruption::PayloadChecksum { index: 2 }));
    let backup = report.backup.clone().unwrap();
    assert_eq!(backup, dir.path().join("j.journal.bak-1"));
    assert_eq!(fs::read(&backup).unwrap(), bytes, "the backup holds the whole damaged file");
    assert_eq!(
        report.to_string(),
        format!(
            "kept 2 records of instance `j` and removed {} bytes from byte {} on (record 2 fails its checksum); \
             the journal as it was is saved at `{}`",
            bytes.len() - starts[2],
            starts[2],
            backup.display()
        )
    );
    assert_eq!(fs::read(&path).unwrap(), &bytes[..starts[2]]);
    let stored = store.read(&j).unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(store.append(&j, 2, &[b"after the repair"]).unwrap(), 3);
    assert_eq!(store.list().unwrap(), [id("j")], "backups are not journals");

    // A second repair never overwrites the first backup.
    let mut again = fs::read(&path).unwrap();
    *again.last_mut().unwrap() ^= 0x01;
    fs::write(&path, &again).unwrap();
    let second = store.repair(&j).unwrap();
    assert_eq!(second.backup, Some(dir.path().join("j.journal.bak-2")));
    assert_eq!(fs::read(&backup).unwrap(), bytes);
    assert_eq!(fs::read(dir.path().join("j.journal.bak-2")).unwrap(), again);
    assert_eq!(store.read(&j).unwrap().version, 2);

    // A sound journal is left alone, without a backup.
    let sound = store.repair(&j).unwrap();
    assert_eq!((sound.records_kept, sound.bytes_removed, sound.backup), (2, 0, None));
    assert!(!dir.path().join("j.journal.bak-3").exists());
}

#[test]
fn repair_cuts_a_torn_tail_and_refuses_what_it_cannot_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (store, bytes, starts) = journal(dir.path(), 3);
    let j = id("j");
    fs::write(store.path_of(&j), &bytes[..bytes.len() - 2]).unwrap();
    let report = store.repair(&j).unwrap();
    assert_eq!((report.records_kept, report.cut_at as usize, report.damage), (2, starts[2], None));
    assert!(report.backup.is_some());

    // Read-only handles do not repair.
    let err = FileStore::open_read_only(dir.path()).unwrap().repair(&j).unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly { .. }), "{err:?}");

    // A damaged file header leaves nothing to keep: repair refuses and changes nothing.
    let mut damaged = bytes.clone();
    damaged[25] ^= 0x01;
    fs::write(store.path_of(&j), &damaged).unwrap();
    let err = store.repair(&j).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { offset: 0, reason: Corruption::FileHeaderChecksum, .. }), "{err:?}");
    assert_eq!(fs::read(store.path_of(&j)).unwrap(), damaged);
    assert!(!dir.path().join("j.journal.bak-2").exists());
}

/// Records and headers over the reader's cap are refused with the cap and the size, whatever
/// the writer's cap was.
#[test]
fn stored_records_and_headers_over_the_cap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let writer = store_in(dir.path());
    writer.create(&id("r"), b"small").unwrap();
    writer.append(&id("r"), 0, &[&[b'x'; 10], &[b'y'; 100]]).unwrap();
    writer.create(&id("h"), &[b'h'; 60]).unwrap();
    let reader =
        FileStore::open_read_only(dir.path()).unwrap().with_config(FileStoreConfig::default().with_max_record_len(50));
    let err = reader.read(&id("r")).unwrap_err();
    assert!(
        matches!(err, JournalError::StoredTooLarge { offset: 47, index: Some(1), len: 100, max: 50, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the journal of instance `r` holds record 1 of 100 bytes at byte 47, over the limit of 50 bytes\n\
         help: if the file is trusted, open it with a larger `max_record_len`"
    );
    let err = reader.read(&id("h")).unwrap_err();
    assert!(matches!(err, JournalError::StoredTooLarge { index: None, len: 60, max: 50, .. }), "{err:?}");
    assert!(err.to_string().starts_with("the journal of instance `h` holds a header of 60 bytes"), "{err}");
}
