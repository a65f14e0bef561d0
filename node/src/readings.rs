//! What the node tells about itself on `/metrics` and `/status` (`ferry node --metrics`):
//! plain values, filled by the event loop and rendered here.

use serde::Serialize;

/// The kind of a Prometheus metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One reading of the node: what `/metrics` serves. Counters count from the node's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metrics {
    /// Peers with an established session.
    pub(crate) peers: u64,
    /// Open TCP connections, with or without a session.
    pub(crate) connections: u64,
    /// Live keys in the store.
    pub(crate) keys: u64,
    /// Entries held in the log above the compaction base.
    pub(crate) log_entries: u64,
    /// Bytes of the WAL file.
    pub(crate) wal_bytes: u64,
    /// Local writes made durable and acknowledged.
    pub(crate) writes_acked: u64,
    /// Entries applied to the store, local and received.
    pub(crate) entries_applied: u64,
    /// Entries received that were already held.
    pub(crate) entries_duplicate: u64,
    /// Sessions established.
    pub(crate) sessions_opened: u64,
    /// Handshakes that failed or were refused (wrong key, version, id, ...).
    pub(crate) handshakes_failed: u64,
    /// Connections refused before any handshake (per-address budget, shutting down).
    pub(crate) connections_refused: u64,
    /// Frames rejected (undecodable, unauthenticated, out of place).
    pub(crate) frames_rejected: u64,
    /// Sessions closed for too many invalid envelopes.
    pub(crate) sessions_closed_invalid: u64,
    /// Received timestamps too far ahead to merge into the clock.
    pub(crate) clock_rejections: u64,
    /// Entries refused because their origin is not a member (`--trust`).
    pub(crate) entries_refused: u64,
    /// Entries refused because they do not carry their origin's signature.
    pub(crate) entries_forged: u64,
    /// Compactions of the WAL.
    pub(crate) compactions: u64,
    /// Snapshots received, verified and merged.
    pub(crate) snapshots_applied: u64,
    /// Bytes read from peers.
    pub(crate) received_bytes: u64,
    /// Bytes handed to peers' connections.
    pub(crate) sent_bytes: u64,
}

impl Metrics {
    /// Every metric: name, kind, help text and value.
    fn rows(&self) -> [(&'static str, Kind, &'static str, u64); 20] {
        use Kind::{Counter, Gauge};
        [
            ("ferry_peers", Gauge, "Peers with an established session.", self.peers),
            (
                "ferry_connections",
                Gauge,
                "Open TCP connections, with or without a session.",
                self.connections,
            ),
            ("ferry_keys", Gauge, "Live keys in the replicated store.", self.keys),
            (
                "ferry_log_entries",
                Gauge,
                "Entries held in the log above the compaction base.",
                self.log_entries,
            ),
            ("ferry_wal_bytes", Gauge, "Bytes of the write-ahead log file.", self.wal_bytes),
            (
                "ferry_writes_acked_total",
                Counter,
                "Local writes made durable and acknowledged.",
                self.writes_acked,
            ),
            ("ferry_entries_applied_total", Counter, "Entries applied to the store.", self.entries_applied),
            (
                "ferry_entries_duplicate_total",
                Counter,
                "Entries received already held.",
                self.entries_duplicate,
            ),
            ("ferry_sessions_opened_total", Counter, "Sessions established.", self.sessions_opened),
            (
                "ferry_handshakes_failed_total",
                Counter,
                "Handshakes failed or refused.",
                self.handshakes_failed,
            ),
            (
                "ferry_connections_refused_total",
                Counter,
                "Connections refused before any handshake.",
                self.connections_refused,
            ),
            ("ferry_frames_rejected_total", Counter, "Frames rejected.", self.frames_rejected),
            (
                "ferry_sessions_closed_invalid_total",
                Counter,
                "Sessions closed for too many invalid envelopes.",
                self.sessions_closed_invalid,
            ),
            (
                "ferry_clock_rejections_total",
                Counter,
                "Received timestamps too far ahead of the clock.",
                self.clock_rejections,
            ),
            (
                "ferry_entries_refused_total",
                Counter,
                "Entries refused: their origin is not a member.",
                self.entries_refused,
            ),
            (
                "ferry_entries_forged_total",
                Counter,
                "Entries refused: not signed by their origin's key (forged or altered).",
                self.entries_forged,
            ),
            ("ferry_compactions_total", Counter, "Compactions of the write-ahead log.", self.compactions),
            (
                "ferry_snapshots_applied_total",
                Counter,
                "Snapshots verified and merged.",
                self.snapshots_applied,
            ),
            ("ferry_received_bytes_total", Counter, "Bytes read from peers.", self.received_bytes),
            ("ferry_sent_bytes_total", Counter, "Bytes sent to peers.", self.sent_bytes),
        ]
    }

    /// The reading in the Prometheus text exposition format 0.0.4. Names and help texts are
    /// constants and values are integers: nothing a peer sends reaches this text.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        for (name, kind, help, value) in self.rows() {
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        text
    }
}

/// What `/status` serves, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Status {
    /// The node's name.
    pub(crate) name: String,
    /// Names of the peers with a session, in order.
    pub(crate) peers: Vec<String>,
    /// The digest of the replicated state, in hex (the `digest` command's answer).
    pub(crate) digest: String,
    /// Live keys in the store.
    pub(crate) keys: u64,
    /// Bytes of the WAL file.
    pub(crate) wal_bytes: u64,
    /// Whether the node is shutting down.
    pub(crate) stopping: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_renders_in_the_prometheus_text_format() {
        let metrics = Metrics { peers: 2, sent_bytes: 12_345, ..Metrics::default() };
        let text = metrics.render();
        assert!(text.starts_with(
            "# HELP ferry_peers Peers with an established session.\n# TYPE ferry_peers gauge\nferry_peers 2\n"
        ));
        assert!(text.ends_with("# TYPE ferry_sent_bytes_total counter\nferry_sent_bytes_total 12345\n"));
        assert_eq!(text.lines().count(), 3 * 20);
        // Every name is a valid Prometheus metric name, and each appears once.
        let names: std::collections::BTreeSet<&str> = metrics.rows().iter().map(|(name, ..)| *name).collect();
        assert_eq!(names.len(), 20);
        assert!(names.iter().all(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
