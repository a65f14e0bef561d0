//! Trace descriptions of the messages a ferry node sends, from their plaintext.
//!
//! Frames after the handshake are encrypted, so the trace cannot read them on the wire; the
//! sending node attaches each message before encryption (`NodeConfig::describe_sends`) and
//! this module turns it into a few words: `WalPush msg_id=5 a:3..7 c:1`. Origins are shown
//! by node name. Values appear only when asked for (`FerryConfig::trace_values`); keys and
//! values are untrusted bytes and are escaped and cut to a bound. Nothing here is hashed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use ferry_protocol::message::{Message, RoutedBody};
use ferry_protocol::node::{Escaped, SentMessage};
use ferry_protocol::{NodeId, Operation, VersionVector};

/// Most origin runs, vector positions or routes listed in one description; the rest are
/// counted (`+3 more`).
pub const DESCRIBED_ITEMS_MAX: usize = 32;
/// Most WalPush entries whose key and value are shown with `trace_values`.
pub const DESCRIBED_ENTRIES_MAX: usize = 8;
/// Most bytes of one key, value or close reason shown; the rest are counted.
pub const DESCRIBED_BYTES_MAX: usize = 32;

/// Node names by id, for the origins and targets a message names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names(BTreeMap<NodeId, String>);

impl Names {
    pub(crate) fn new(names: &[String]) -> Self {
        Self(names.iter().map(|name| (NodeId::from_name(name), name.clone())).collect())
    }

    /// The node's name, or its id in hex when it is not one of the run's nodes.
    pub(crate) fn show(&self, id: NodeId) -> Shown<'_> {
        Shown { names: self, id }
    }
}

/// A node id shown by name.
pub(crate) struct Shown<'a> {
    names: &'a Names,
    id: NodeId,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.names.0.get(&self.id) {
            Some(name) => formatter.write_str(name),
            None => write!(formatter, "{}", self.id),
        }
    }
}

/// `Type msg_id=N details`, where the details depend on the type:
/// - `WalPush`: runs of consecutive sequences per origin, `a:3..7 c:1`; with `values`, then
///   the first entries as `{a#3 put "k"="v", a#4 delete "k2"}`;
/// - `WalAck`, `OutboxPull`: the vector, `vec a:7 b:2` (`vec empty` when empty);
/// - `Ping`, `Pong`: nothing more (a Pong echoes its Ping's msg_id);
/// - `Close`: the code and the escaped reason;
/// - `RouteAnnounce`: `target:distance` pairs; `Routed`: `source -> target`, the hops left
///   and the body.
pub(crate) fn describe(sent: &SentMessage, names: &Names, values: bool) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write_description(&mut text, sent, names, values);
    text
}

fn write_description(text: &mut String, sent: &SentMessage, names: &Names, values: bool) -> fmt::Result {
    write!(text, "{:?} msg_id={}", sent.message.message_type(), sent.msg_id)?;
    match &sent.message {
        Message::Hello { .. }
        | Message::HelloAck { .. }
        | Message::HelloFinish { .. }
        | Message::Ping { .. }
        | Message::Pong { .. }
        | Message::Prune => Ok(()),
        Message::WalPush { entries } => {
            write_runs(text, entries.iter().map(|entry| (entry.origin, entry.sequence)), names)?;
            if values && !entries.is_empty() {
                text.push_str(" {");
                for (index, entry) in entries.iter().take(DESCRIBED_ENTRIES_MAX).enumerate() {
                    if index > 0 {
                        text.push_str(", ");
                    }
                    write!(text, "{}#{} ", names.show(entry.origin), entry.sequence)?;
                    match &entry.operation {
                        Operation::Put { key, value } => write!(
                            text,
                            "put {}={}",
                            Escaped { bytes: key, bytes_max: DESCRIBED_BYTES_MAX },
                            Escaped { bytes: value, bytes_max: DESCRIBED_BYTES_MAX }
                        )?,
                        Operation::Delete { key } => {
                            write!(text, "delete {}", Escaped { bytes: key, bytes_max: DESCRIBED_BYTES_MAX })?
                        }
                        Operation::Seal(seal) => write!(text, "seal {}..={}", seal.first, seal.last)?,
                    }
                }
                if entries.len() > DESCRIBED_ENTRIES_MAX {
                    write!(text, ", +{} more", entries.len() - DESCRIBED_ENTRIES_MAX)?;
                }
                text.push('}');
            }
            Ok(())
        }
        Message::WalAck { positions: vector } | Message::OutboxPull { vector } => {
            write_vector(text, vector, names)
        }
        Message::SnapshotOffer { snapshot_id, vector, entries_count, chunks_count, .. } => {
            write!(text, " id={snapshot_id:016x} entries={entries_count} chunks={chunks_count}")?;
            write_vector(text, vector, names)
        }
        Message::SnapshotPull { snapshot_id, chunk_index } => {
            write!(text, " id={snapshot_id:016x} chunk={chunk_index}")
        }
        Message::SnapshotChunk { snapshot_id, chunk_index, entries } => {
            write!(text, " id={snapshot_id:016x} chunk={chunk_index} entries={}", entries.len())
        }
        Message::Close { code, reason } => {
            let reason = Escaped { bytes: reason.as_bytes(), bytes_max: DESCRIBED_BYTES_MAX };
            write!(text, " {code:?} {reason}")
        }
        Message::RouteAnnounce { routes } => {
            for route in routes.iter().take(DESCRIBED_ITEMS_MAX) {
                write!(text, " {}:{}", names.show(route.target), route.distance)?;
            }
            write_more(text, routes.len())
        }
        Message::Routed { source, target, hops_left, body } => {
            write!(text, " {} -> {} hops_left={hops_left} ", names.show(*source), names.show(*target))?;
            match body {
                RoutedBody::Ping { .. } => text.push_str("ping"),
                RoutedBody::Pong { .. } => text.push_str("pong"),
            }
            Ok(())
        }
    }
}

/// ` a:3..7 c:1`: each run of consecutive sequences of one origin, in message order.
fn write_runs(
    text: &mut String,
    positions: impl Iterator<Item = (NodeId, u64)>,
    names: &Names,
) -> fmt::Result {
    // The first runs, to show, and the one being extended; the rest are only counted.
    let mut shown: Vec<(NodeId, u64, u64)> = Vec::new();
    let mut current: Option<(NodeId, u64, u64)> = None;
    let mut runs_count = 0usize;
    for (origin, sequence) in positions {
        if let Some((current_origin, _, last)) = &mut current
            && *current_origin == origin
            && last.checked_add(1) == Some(sequence)
        {
            *last = sequence;
            continue;
        }
        if let Some(run) = current.take()
            && shown.len() < DESCRIBED_ITEMS_MAX
        {
            shown.push(run);
        }
        current = Some((origin, sequence, sequence));
        runs_count += 1;
    }
    if let Some(run) = current
        && shown.len() < DESCRIBED_ITEMS_MAX
    {
        shown.push(run);
    }
    for (origin, first, last) in &shown {
        write!(text, " {}:{first}", names.show(*origin))?;
        if last > first {
            write!(text, "..{last}")?;
        }
    }
    write_more(text, runs_count)
}

/// ` vec a:7 b:2`, or ` vec empty`.
fn write_vector(text: &mut String, vector: &VersionVector, names: &Names) -> fmt::Result {
    text.push_str(" vec");
    if vector.iter().next().is_none() {
        text.push_str(" empty");
        return Ok(());
    }
    for (origin, position) in vector.iter().take(DESCRIBED_ITEMS_MAX) {
        write!(text, " {}:{position}", names.show(origin))?;
    }
    write_more(text, vector.iter().count())
}

fn write_more(text: &mut String, items_count: usize) -> fmt::Result {
    if items_count > DESCRIBED_ITEMS_MAX {
        write!(text, " +{} more", items_count - DESCRIBED_ITEMS_MAX)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_protocol::message::{CloseCode, Route};
    use ferry_protocol::{Timestamp, WalEntry};

    use super::*;

    fn names() -> Names {
        Names::new(&["a".to_owned(), "b".to_owned(), "c".to_owned()])
    }

    fn id(name: &str) -> NodeId {
        NodeId::from_name(name)
    }

    fn show(msg_id: u32, message: Message, values: bool) -> String {
        describe(&SentMessage { msg_id, message }, &names(), values)
    }

    fn put(origin: &str, sequence: u64, key: &[u8], value: &[u8]) -> WalEntry {
        WalEntry {
            origin: id(origin),
            sequence,
            timestamp: Timestamp::new(sequence, 0),
            operation: Operation::Put {
                key: Bytes::copy_from_slice(key),
                value: Bytes::copy_from_slice(value),
            },
            proof: None,
        }
    }

    fn vector(positions: &[(&str, u64)]) -> VersionVector {
        positions.iter().map(|(name, position)| (id(name), *position)).collect()
    }

    #[test]
    fn handshake_ping_and_pong_show_type_and_msg_id() {
        let noise = Bytes::from_static(b"noise");
        assert_eq!(show(1, Message::Hello { noise: noise.clone() }, false), "Hello msg_id=1");
        assert_eq!(show(1, Message::HelloAck { noise: noise.clone() }, false), "HelloAck msg_id=1");
        assert_eq!(show(2, Message::HelloFinish { noise }, false), "HelloFinish msg_id=2");
        assert_eq!(show(9, Message::Ping { token: 77 }, false), "Ping msg_id=9");
        assert_eq!(show(9, Message::Pong { token: 77 }, true), "Pong msg_id=9");
    }

    #[test]
    fn wal_push_shows_runs_of_each_origin_and_values_only_when_asked() {
        // Goal: ranges are exact for any entry order (runs, not min..max), values stay
        // hidden by default, and hostile keys and values are escaped and cut.
        let entries = vec![
            put("a", 3, b"k1", b"v1"),
            put("a", 4, b"k2", b"v2"),
            put("a", 5, b"k3", b"v3"),
            put("c", 1, b"k\n\"x\"", &[b'z'; 40]),
            put("a", 7, b"k4", b"\xff"),
        ];
        assert_eq!(
            show(5, Message::WalPush { entries: entries.clone() }, false),
            "WalPush msg_id=5 a:3..5 c:1 a:7"
        );
        assert_eq!(
            show(5, Message::WalPush { entries }, true),
            concat!(
                r#"WalPush msg_id=5 a:3..5 c:1 a:7 {a#3 put "k1"="v1", a#4 put "k2"="v2", "#,
                r#"a#5 put "k3"="v3", c#1 put "k\x0a\"x\""="zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"+8B, "#,
                r#"a#7 put "k4"="\xff"}"#
            )
        );
        let deleted = WalEntry {
            operation: Operation::Delete { key: Bytes::from_static(b"gone") },
            ..put("b", 1, b"", b"")
        };
        assert_eq!(
            show(6, Message::WalPush { entries: vec![deleted] }, true),
            r#"WalPush msg_id=6 b:1 {b#1 delete "gone"}"#
        );
        assert_eq!(show(7, Message::WalPush { entries: Vec::new() }, true), "WalPush msg_id=7");
    }

    #[test]
    fn wal_push_lists_are_bounded() {
        let entries: Vec<WalEntry> = (1..=40)
            .map(|sequence| put(if sequence % 2 == 0 { "a" } else { "b" }, sequence, b"k", b"v"))
            .collect();
        let text = show(1, Message::WalPush { entries }, true);
        assert!(text.starts_with("WalPush msg_id=1 b:1 a:2 b:3 "), "{text}");
        assert!(text.contains(" a:32 +8 more {b#1 put"), "{text}");
        assert!(text.ends_with(r#"a#8 put "k"="v", +32 more}"#), "{text}");
    }

    #[test]
    fn vectors_show_positions_by_name() {
        let positions = vector(&[("a", 7), ("b", 2)]);
        // Vectors are ordered by node id, not by name.
        let expected = if id("a") < id("b") { "vec a:7 b:2" } else { "vec b:2 a:7" };
        assert_eq!(show(3, Message::WalAck { positions }, false), format!("WalAck msg_id=3 {expected}"));
        let vector = vector(&[("a", 7), ("b", 2)]);
        assert_eq!(show(4, Message::OutboxPull { vector }, false), format!("OutboxPull msg_id=4 {expected}"));
        let empty = VersionVector::new();
        assert_eq!(show(1, Message::OutboxPull { vector: empty }, false), "OutboxPull msg_id=1 vec empty");
        let stranger = [(NodeId(0x1234), 1)].into_iter().collect();
        assert_eq!(
            show(1, Message::WalAck { positions: stranger }, false),
            "WalAck msg_id=1 vec 0000000000001234:1"
        );
    }

    #[test]
    fn close_routes_and_routed_messages() {
        let close = Message::Close { code: CloseCode::Shutdown, reason: "bye\u{1b}[2J".to_owned() };
        assert_eq!(show(2, close, false), r#"Close msg_id=2 Shutdown "bye\x1b[2J""#);
        let routes = vec![Route { target: id("b"), distance: 1 }, Route { target: id("c"), distance: 2 }];
        assert_eq!(show(3, Message::RouteAnnounce { routes }, false), "RouteAnnounce msg_id=3 b:1 c:2");
        let routed = Message::Routed {
            source: id("a"),
            target: id("c"),
            hops_left: 7,
            body: RoutedBody::Ping { token: 1 },
        };
        assert_eq!(show(4, routed, false), "Routed msg_id=4 a -> c hops_left=7 ping");
    }
}
