//! Encoding and scanning of the journal's on-disk format (see the module doc of `journal`).

use std::io::{BufRead, BufReader, Read};

use super::Corruption;
use super::crc::{Crc32c, crc32c};

/// The first eight bytes of every journal file.
pub(crate) const MAGIC: [u8; 8] = *b"KARSJRNL";
/// The format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Magic, format version, header length and header crc.
pub(crate) const FILE_HEADER_FIXED: usize = 20;
/// Length, payload crc and frame crc.
pub(crate) const FRAME_HEADER: usize = 12;

/// The bytes of a new journal file with `header` and no frames. `header` fits in a `u32`.
pub(crate) fn encode_file_header(header: &[u8]) -> Vec<u8> {
    let len = u32::try_from(header.len()).unwrap_or(u32::MAX).to_le_bytes();
    let version = FORMAT_VERSION.to_le_bytes();
    let crc = Crc32c::new().update(&version).update(&len).update(header).finish();
    let mut out = Vec::with_capacity(FILE_HEADER_FIXED + header.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(header);
    out
}

/// Masks a stored crc (as LevelDB does), so that no frame of zero bytes is ever valid: the
/// masked crc of an empty payload is `0xA282_EAD8`, not 0.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// The stored payload crc of `payload`.
fn payload_crc(payload: &[u8]) -> u32 {
    mask(crc32c(payload))
}

/// The stored frame crc of record `index`.
fn frame_crc(index: u64, len: [u8; 4], payload_crc: [u8; 4]) -> u32 {
    mask(Crc32c::new().update(&index.to_le_bytes()).update(&len).update(&payload_crc).finish())
}

/// Appends the frames of `records` to `out`, the first one being record `first_index`.
/// Every record fits in a `u32` (the store checked its size).
pub(crate) fn encode_frames(out: &mut Vec<u8>, first_index: u64, records: &[&[u8]]) {
    for (index, record) in (first_index..).zip(records) {
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX).to_le_bytes();
        let payload_crc = payload_crc(record).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&payload_crc);
        out.extend_from_slice(&frame_crc(index, len, payload_crc).to_le_bytes());
        out.extend_from_slice(record);
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

/// What stops a read of a journal at a byte offset, other than a torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The bytes are damaged.
    Damaged(Corruption),
    /// A record (`Some(index)`) or the header (`None`) is longer than the reader's cap.
    TooLarge {
        /// The record index, or `None` for the file header.
        index: Option<u64>,
        /// Its length field.
        len: u64,
    },
}

/// Why a journal could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file system failed.
    Io(std::io::Error),
    /// A problem at an absolute byte offset.
    At(u64, Problem),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads the file header from `r`, positioned at the start of a file of `file_len` bytes, and
/// returns the header bytes (frames start at `FILE_HEADER_FIXED + header.len()`).
///
/// A file header is written atomically, so any damage to it is corruption. A header length over
/// `max` is refused before anything of that length is allocated.
pub(crate) fn read_file_header(mut r: impl Read, file_len: u64, max: u32) -> Result<Vec<u8>, ReadError> {
    let damaged = |offset, c| Err(ReadError::At(offset, Problem::Damaged(c)));
    let mut fixed = [0u8; FILE_HEADER_FIXED];
    let have = usize::try_from(file_len).unwrap_or(usize::MAX).min(FILE_HEADER_FIXED);
    r.read_exact(&mut fixed[..have])?;
    if have < MAGIC.len() || fixed[..MAGIC.len()] != MAGIC {
        return damaged(0, Corruption::BadMagic);
    }
    if have < 16 {
        return damaged(0, Corruption::ShortFileHeader);
    }
    let (version, len) = (u32_at(&fixed, 8), u32_at(&fixed, 12));
    if version != FORMAT_VERSION {
        return damaged(8, Corruption::UnsupportedFormat { found: version });
    }
    if have < FILE_HEADER_FIXED || u64::from(len) > file_len - FILE_HEADER_FIXED as u64 {
        return damaged(0, Corruption::ShortFileHeader);
    }
    if len > max {
        return Err(ReadError::At(12, Problem::TooLarge { index: None, len: u64::from(len) }));
    }
    let mut header = vec![0u8; len as usize];
    r.read_exact(&mut header)?;
    let expected = Crc32c::new().update(&fixed[8..16]).update(&header).finish();
    if u32_at(&fixed, 16) != expected {
        return damaged(0, Corruption::FileHeaderChecksum);
    }
    Ok(header)
}

/// The offset of the first frame of a journal whose header is `header_len` bytes long.
pub(crate) fn frames_start(header_len: usize) -> u64 {
    (FILE_HEADER_FIXED + header_len) as u64
}

/// Why a scan of frames ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// At the end of the file, after a valid frame (or the file header).
    End,
    /// At a torn tail: an incomplete frame, or bytes that are all zero (never written). Only an
    /// append that was never acknowledged can leave one.
    Torn,
    /// At a frame that is not a torn write.
    Problem(Problem),
}

/// What a scan of frames found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The absolute offset just past the last valid frame: where the scan stopped.
    pub(crate) end: u64,
    /// The number of records up to `end` (the index of the next frame).
    pub(crate) version: u64,
    /// Why the scan stopped at `end`.
    pub(crate) stop: Stop,
}

/// Scans the frames read from `r`, which is positioned at absolute offset `base` (the start of
/// frame `first_index`) of a file of `file_len` bytes, pushing each valid payload to `records`
/// if given.
///
/// A payload is allocated only if it is kept, and only once its frame header checks, its
/// length is within `max`, and the file holds all of it. A payload that is not kept is checked
/// straight from the read buffer.
///
/// # Errors
/// Only if reading fails; damage ends the scan with [`Stop::Problem`].
pub(crate) fn scan_frames(
    r: impl Read,
    base: u64,
    file_len: u64,
    first_index: u64,
    max: u32,
    mut records: Option<&mut Vec<Vec<u8>>>,
) -> std::io::Result<Scan> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let (mut at, mut index) = (base, first_index);
    let stop = |at, index, stop| Ok(Scan { end: at, version: index, stop });
    loop {
        let remaining = file_len.saturating_sub(at);
        if remaining == 0 {
            return stop(at, index, Stop::End);
        }
        if remaining < FRAME_HEADER as u64 {
            // Fewer bytes than a frame header: a write that stopped early.
            return stop(at, index, Stop::Torn);
        }
        let mut head = [0u8; FRAME_HEADER];
        r.read_exact(&mut head)?;
        let (len, payload_crc) = (u32_at(&head, 0), u32_at(&head, 4));
        if u32_at(&head, 8) != frame_crc(index, len.to_le_bytes(), payload_crc.to_le_bytes()) {
            if all_zero(&head) && rest_is_zero(&mut r)? {
                return stop(at, index, Stop::Torn);
            }
            return stop(at, index, Stop::Problem(Problem::Damaged(Corruption::FrameHeaderChecksum { index })));
        }
        if u64::from(len) > remaining - FRAME_HEADER as u64 {
            // A valid frame header whose payload runs past the end of the file.
            return stop(at, index, Stop::Torn);
        }
        if len > max {
            return stop(at, index, Stop::Problem(Problem::TooLarge { index: Some(index), len: u64::from(len) }));
        }
        let mut payload = Vec::new();
        let keep = records.is_some();
        if keep {
            payload.reserve_exact(len as usize);
        }
        let mut crc = Crc32c::new();
        let mut left = len as usize;
        while left > 0 {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let n = buf.len().min(left);
            crc = crc.update(&buf[..n]);
            if keep {
                payload.extend_from_slice(&buf[..n]);
            }
            r.consume(n);
            left -= n;
        }
        if mask(crc.finish()) != payload_crc {
            // The whole frame is there and its header checks: a flipped byte, not a torn write.
            return stop(at, index, Stop::Problem(Problem::Damaged(Corruption::PayloadChecksum { index })));
        }
        if let Some(records) = records.as_deref_mut() {
            records.push(payload);
        }
        at += (FRAME_HEADER as u64) + u64::from(len);
        index += 1;
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Whether everything left in `r` is zero bytes.
fn rest_is_zero(r: &mut impl Read) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) if all_zero(&chunk[..n]) => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1024;

    fn journal(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = encode_file_header(b"hdr");
        encode_frames(&mut buf, 0, records);
        buf
    }

    fn scan_all(buf: &[u8]) -> (Vec<Vec<u8>>, Scan) {
        let header = read_file_header(buf, buf.len() as u64, MAX).unwrap();
        assert_eq!(header, b"hdr");
        let start = frames_start(header.len());
        let mut out = Vec::new();
        let scan = scan_frames(&buf[start as usize..], start, buf.len() as u64, 0, MAX, Some(&mut out)).unwrap();
        (out, scan)
    }

    #[test]
    fn round_trips() {
        let buf = journal(&[b"one", b"", b"three"]);
        let (records, scan) = scan_all(&buf);
        assert_eq!(records, [b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(scan, Scan { end: buf.len() as u64, version: 3, stop: Stop::End });
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut buf = journal(&[b"one"]);
        let end = buf.len() as u64;
        buf.extend_from_slice(&[0; 40]);
        let (records, scan) = scan_all(&buf);
        assert_eq!(records.len(), 1);
        assert_eq!(scan, Scan { end, version: 1, stop: Stop::Torn });
    }

    #[test]
    fn a_frame_of_zeros_is_never_valid() {
        // Whatever the index, twelve zero bytes do not decode as an empty record.
        for index in [0u64, 1, 2, 1000, u64::MAX] {
            let zeros = [0u8; FRAME_HEADER];
            let mut out = Vec::new();
            let scan = scan_frames(&zeros[..], 0, 12, index, MAX, Some(&mut out)).unwrap();
            assert_eq!(scan.stop, Stop::Torn);
            assert!(out.is_empty(), "a frame of zeros was accepted");
        }
        assert_ne!(payload_crc(b""), 0);
    }

    #[test]
    fn a_moved_frame_is_detected() {
        // The frame crc covers the index, so record 0's frame is not accepted as record 1.
        let buf = journal(&[b"same"]);
        let start = frames_start(3) as usize;
        let mut doubled = buf.clone();
        doubled.extend_from_slice(&buf[start..]);
        doubled.extend_from_slice(&buf[start..]);
        let (_, scan) = scan_all(&doubled);
        assert_eq!(scan.stop, Stop::Problem(Problem::Damaged(Corruption::FrameHeaderChecksum { index: 1 })));
    }

    #[test]
    fn a_complete_last_frame_with_a_bad_payload_is_damage_not_a_tear() {
        let mut buf = journal(&[b"one", b"two"]);
        let last = buf.len() - 3 - FRAME_HEADER;
        *buf.last_mut().unwrap() ^= 1;
        let (records, scan) = scan_all(&buf);
        assert_eq!(records, [b"one".to_vec()]);
        assert_eq!(
            scan,
            Scan {
                end: last as u64,
                version: 1,
                stop: Stop::Problem(Problem::Damaged(Corruption::PayloadChecksum { index: 1 }))
            }
        );
    }

    #[test]
    fn lengths_over_the_cap_are_refused_before_allocation() {
        // A valid frame header that claims 4 GiB, in a file that holds it only nominally: the
        // scan stops before allocating the payload, as torn if the file is shorter...
        let len = u32::MAX.to_le_bytes();
        let crc = payload_crc(b"").to_le_bytes();
        let mut frame = [0u8; FRAME_HEADER];
        frame[..4].copy_from_slice(&len);
        frame[4..8].copy_from_slice(&crc);
        frame[8..].copy_from_slice(&frame_crc(0, len, crc).to_le_bytes());
        let mut out = Vec::new();
        let scan = scan_frames(&frame[..], 0, 12, 0, MAX, Some(&mut out)).unwrap();
        assert_eq!(scan.stop, Stop::Torn);
        // ...and as too large when the file is long enough (its bytes are never read).
        let scan = scan_frames(&frame[..], 0, 12 + u64::from(u32::MAX), 0, MAX, Some(&mut out)).unwrap();
        assert_eq!(scan.stop, Stop::Problem(Problem::TooLarge { index: Some(0), len: u64::from(u32::MAX) }));
        assert!(out.is_empty());
        // A header over the cap is refused before it is read.
        let buf = encode_file_header(&[7; 100]);
        let err = read_file_header(&buf[..], buf.len() as u64, 99).unwrap_err();
        assert!(matches!(err, ReadError::At(12, Problem::TooLarge { index: None, len: 100 })), "{err:?}");
        // A header length past the end of the file is a short header.
        let err = read_file_header(&buf[..50], 50, MAX).unwrap_err();
        assert!(matches!(err, ReadError::At(0, Problem::Damaged(Corruption::ShortFileHeader))), "{err:?}");
    }
}
