//! A [`History`] read from outside: its records one by one, its equality, its `Debug` and
//! its JSON (the header, `first_seq` when not 0, and the records in order, as before records
//! were kept compact).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::History;
use crate::history::{HistoryHeader, Record};

/// The records of a [`History`], rebuilt one by one ([`History::records`], [`History::since`]).
#[derive(Clone)]
pub struct Records<'a> {
    pub(super) history: &'a History,
    pub(super) range: std::ops::Range<usize>,
}

impl Iterator for Records<'_> {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        self.range.next().and_then(|i| self.history.rebuild(i))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
    fn nth(&mut self, n: usize) -> Option<Record> {
        self.range.nth(n).and_then(|i| self.history.rebuild(i))
    }
}

impl DoubleEndedIterator for Records<'_> {
    fn next_back(&mut self) -> Option<Record> {
        self.range.next_back().and_then(|i| self.history.rebuild(i))
    }
}

impl ExactSizeIterator for Records<'_> {}

impl fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
            && self.first_seq == other.first_seq
            && self.len() == other.len()
            && self.records().eq(other.records())
    }
}

impl Eq for History {}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("header", &self.header)
            .field("first_seq", &self.first_seq)
            .field("records", &self.records())
            .finish()
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let whole = self.first_seq == 0;
        let mut s = serializer.serialize_struct("History", if whole { 2 } else { 3 })?;
        s.serialize_field("header", &self.header)?;
        if whole {
            s.skip_field("first_seq")?;
        } else {
            s.serialize_field("first_seq", &self.first_seq)?;
        }
        s.serialize_field("records", &AsSeq(self.records()))?;
        s.end()
    }
}

/// Serializes an iterator's items as a sequence.
struct AsSeq<'a>(Records<'a>);

impl Serialize for AsSeq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The JSON form.
        #[derive(Deserialize)]
        #[serde(rename = "History")]
        struct Form {
            header: HistoryHeader,
            #[serde(default)]
            first_seq: u64,
            records: Vec<Record>,
        }
        let form = Form::deserialize(deserializer)?;
        History::from_records(form.header, form.first_seq, form.records).map_err(serde::de::Error::custom)
    }
}
