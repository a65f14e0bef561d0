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
        | Message::Pong { .. } => Ok(()),
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
