//! A clean KARS week as the examples play it: when each person acts (UTC), on which node, and
//! the outcome they report. Shared by `async_service` and `release_bot`.

/// `(instant, node, person, outcome)`, in order.
pub const CLEAN_WEEK: [(&str, &str, &str, Option<&str>); 16] = [
    ("2026-11-23T14:00:00Z", "B", "erin", None),
    ("2026-11-23T14:30:00Z", "C", "frank", None),
    ("2026-11-24T15:00:00Z", "D", "alice", None),
    ("2026-11-25T15:00:00Z", "E", "alice", None),
    ("2026-11-25T19:00:00Z", "F", "bob", Some("approved")),
    ("2026-11-26T22:30:00Z", "I", "erin", None),
    ("2026-11-26T23:00:00Z", "K", "erin", None),
    ("2026-11-27T14:30:00Z", "L", "carol", None),
    ("2026-11-27T15:00:00Z", "M", "dave", None),
    ("2026-11-27T16:00:00Z", "N", "carol", Some("Yes")),
    ("2026-11-27T19:00:00Z", "Q", "carol", None),
    ("2026-11-27T19:30:00Z", "R", "erin", None),
    ("2026-11-30T14:50:00Z", "U", "dave", None),
    ("2026-11-30T14:55:00Z", "W", "frank", Some("approved")),
    ("2026-11-30T15:10:00Z", "Z", "dave", None),
    ("2026-11-30T15:30:00Z", "AE", "erin", None),
];
