//! Encoding and scanning of the journal's on-disk format (see the module doc of `journal`).

use super::Corruption;
use super::crc::{Crc32c, crc32c};

/// The first eight bytes of every journal file.
pub(crate) const MAGIC: [u8; 8] = *b"KARSJRNL";
/// The format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Magic, format version, header length and header crc.
const FILE_HEADER_FIXED: usize = 20;
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

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Damage at an absolute byte offset.
pub(crate) type Damage = (u64, Corruption);

/// Parses the file header at the start of `buf`: returns the header bytes and where frames start.
///
/// A file header is written atomically, so any damage to it is corruption.
pub(crate) fn parse_file_header(buf: &[u8]) -> Result<(&[u8], usize), Damage> {
    if !buf.starts_with(&MAGIC) {
        return Err((0, Corruption::BadMagic));
    }
    let (Some(version), Some(len)) = (u32_at(buf, 8), u32_at(buf, 12)) else {
        return Err((0, Corruption::ShortFileHeader));
    };
    if version != FORMAT_VERSION {
        return Err((8, Corruption::UnsupportedFormat { found: version }));
    }
    let Some(crc) = u32_at(buf, 16) else {
        return Err((0, Corruption::ShortFileHeader));
    };
    let end = usize::try_from(len).ok().and_then(|len| FILE_HEADER_FIXED.checked_add(len));
    let Some(header) = end.and_then(|end| buf.get(FILE_HEADER_FIXED..end)) else {
        return Err((0, Corruption::ShortFileHeader));
    };
    let expected = Crc32c::new().update(&version.to_le_bytes()).update(&len.to_le_bytes()).update(header).finish();
    if crc != expected {
        return Err((0, Corruption::FileHeaderChecksum));
    }
    Ok((header, FILE_HEADER_FIXED + header.len()))
}

/// What a scan of frames found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The absolute offset just past the last valid frame.
    pub(crate) end: u64,
    /// The number of records up to `end` (the index of the next frame).
    pub(crate) version: u64,
    /// Whether bytes after `end` are a torn tail to cut off.
    pub(crate) torn: bool,
}

/// Scans the frames in `buf`, which starts at absolute offset `base` with frame `first_index`,
/// calling `visit` with each valid payload in order.
///
/// A torn tail ends the scan with `torn: true`; damage before the tail is an error.
pub(crate) fn scan_frames(
    buf: &[u8],
    base: u64,
    first_index: u64,
    mut visit: impl FnMut(&[u8]),
) -> Result<Scan, Damage> {
    let mut at = 0usize;
    let mut index = first_index;
    let torn_at = |at: usize, index: u64| Scan { end: base + at as u64, version: index, torn: true };
    loop {
        let rest = &buf[at..];
        if rest.is_empty() {
            return Ok(Scan { end: base + at as u64, version: index, torn: false });
        }
        let (Some(len), Some(payload_crc), Some(crc)) = (u32_at(rest, 0), u32_at(rest, 4), u32_at(rest, 8)) else {
            // Fewer bytes than a frame header: a write that stopped early.
            return Ok(torn_at(at, index));
        };
        if crc != frame_crc(index, len.to_le_bytes(), payload_crc.to_le_bytes()) {
            if all_zero(rest) {
                return Ok(torn_at(at, index));
            }
            return Err((base + at as u64, Corruption::FrameHeaderChecksum { index }));
        }
        let end = usize::try_from(len).ok().and_then(|len| FRAME_HEADER.checked_add(len));
        let Some(payload) = end.and_then(|end| rest.get(FRAME_HEADER..end)) else {
            // A valid frame header whose payload runs past the end of the file.
            return Ok(torn_at(at, index));
        };
        let after = FRAME_HEADER + payload.len();
        if self::payload_crc(payload) != payload_crc {
            if all_zero(&rest[after..]) {
                return Ok(torn_at(at, index));
            }
            return Err((base + at as u64, Corruption::PayloadChecksum { index }));
        }
        visit(payload);
        at += after;
        index += 1;
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = encode_file_header(b"hdr");
        encode_frames(&mut buf, 0, records);
        buf
    }

    fn scan_all(buf: &[u8]) -> Result<(Vec<Vec<u8>>, Scan), Damage> {
        let (header, start) = parse_file_header(buf)?;
        assert_eq!(header, b"hdr");
        let mut out = Vec::new();
        let scan = scan_frames(&buf[start..], start as u64, 0, |p| out.push(p.to_vec()))?;
        Ok((out, scan))
    }

    #[test]
    fn round_trips() {
        let buf = journal(&[b"one", b"", b"three"]);
        let (records, scan) = scan_all(&buf).unwrap();
        assert_eq!(records, [b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(scan, Scan { end: buf.len() as u64, version: 3, torn: false });
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut buf = journal(&[b"one"]);
        let end = buf.len() as u64;
        buf.extend_from_slice(&[0; 40]);
        let (records, scan) = scan_all(&buf).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(scan, Scan { end, version: 1, torn: true });
    }

    #[test]
    fn a_frame_of_zeros_is_never_valid() {
        // Whatever the index, twelve zero bytes do not decode as an empty record.
        for index in [0u64, 1, 2, 1000, u64::MAX] {
            let zeros = [0u8; FRAME_HEADER];
            let scan = scan_frames(&zeros, 0, index, |_| panic!("a frame of zeros was accepted")).unwrap();
            assert!(scan.torn);
        }
        assert_ne!(payload_crc(b""), 0);
    }

    #[test]
    fn a_moved_frame_is_detected() {
        // The frame crc covers the index, so record 0's frame is not accepted as record 1.
        let buf = journal(&[b"same"]);
        let mut doubled = buf.clone();
        let (_, start) = parse_file_header(&buf).unwrap();
        doubled.extend_from_slice(&buf[start..]);
        doubled.extend_from_slice(&buf[start..]);
        assert_eq!(scan_all(&doubled).unwrap_err().1, Corruption::FrameHeaderChecksum { index: 1 });
    }
}
