//! `--timeline PATH.html`: one self-contained HTML page that draws a run.
//!
//! [`Recorder`] is a [`TraceTap`]: it sees exactly the events and fields the JSON-lines trace
//! export writes (`kind`, `node`, `from`, `to`, `message_id`, `reason`, `event`, the text
//! line) and folds them into compact columns: one row per message (send), one per arrow (a
//! delivery, a drop, or a message still in flight at the end), one per lane mark (crash,
//! restart, torn tail, clock jump, protocol event), one per write (issue to acknowledgement,
//! and when every other node had received it), one per fault band and one per down time.
//! [`Recorder::page`] writes them as one JSON object, serialized by serde_json with every `<`,
//! `>` and `&` escaped as `\u003c`-style escapes, inside a `<script type="application/json">`
//! block of a page whose CSS and JavaScript are inline (`timeline.html`); the script draws on
//! a canvas. Nothing in the page depends on the wall clock or on map order, so the same seed
//! gives the same bytes.

use std::collections::BTreeMap;

use ferry_simulator::{LineFields, TraceTap};
use serde::Serialize;

use crate::run::Report;

/// The page around the data: CSS and JavaScript, with `/*FERRY-DATA*/` where the JSON goes.
const TEMPLATE: &str = include_str!("timeline.html");
const DATA_MARK: &str = "/*FERRY-DATA*/";

/// What a lane mark is; the page draws each with its own glyph.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Mark {
    Crash = 0,
    Restart = 1,
    Torn = 2,
    Clock = 3,
    Lww = 4,
    Event = 5,
    Fault = 6,
    Link = 7,
    Refused = 8,
    Command = 9,
}

const MARK_NAMES: [&str; 10] = [
    "crash",
    "restart",
    "torn tail",
    "clock jump",
    "lww conflict",
    "event",
    "fault",
    "link",
    "refused",
    "command",
];

/// Arrow flags (bits).
const DROPPED: u8 = 1;
const DUPLICATE: u8 = 2;
const REORDERED: u8 = 4;
const IN_FLIGHT: u8 = 8;

/// Faults that hold until their end line or a heal, drawn as bands.
const LASTING: [&str; 11] = [
    "partition",
    "isolate",
    "cut",
    "link",
    "clog",
    "corrupt",
    "pause",
    "disk-full",
    "fsync-fail",
    "slow-disk",
    "crash",
];

/// Faults a `heal` ends.
const HEALED: [&str; 7] = ["partition", "isolate", "cut", "link", "clog", "corrupt", "pause"];

#[derive(Default, Serialize)]
struct Columns {
    scenario: String,
    seed: u64,
    end_ns: u64,
    heal_ns: u64,
    converged_ns: Option<u64>,
    trace_hash: String,
    /// `[name, detail]` of every failed check.
    failed: Vec<[String; 2]>,
    nodes: Vec<String>,
    types: Vec<String>,
    reasons: Vec<String>,
    marks: Vec<&'static str>,
    /// Text lines, referred to by index.
    lines: Vec<String>,
    /// Messages: send time, sender, receiver, type, send line.
    m_t: Vec<u64>,
    m_from: Vec<u32>,
    m_to: Vec<u32>,
    m_type: Vec<u32>,
    m_line: Vec<u32>,
    /// Arrows, in send order: message, end time, flags, drop reason (or 0), end line.
    a_msg: Vec<u32>,
    a_end: Vec<u64>,
    a_flags: Vec<u8>,
    a_reason: Vec<u32>,
    a_line: Vec<u32>,
    /// Lane marks, in time order.
    k_t: Vec<u64>,
    k_node: Vec<u32>,
    k_kind: Vec<u8>,
    k_line: Vec<u32>,
    /// Writes: node, issued, acknowledged (or the end), ack line (or -1), received by every
    /// other node (or -1), issue line.
    w_node: Vec<u32>,
    w_t0: Vec<u64>,
    w_t1: Vec<u64>,
    w_ack: Vec<i64>,
    w_all: Vec<i64>,
    w_line: Vec<u32>,
    /// Fault bands: start, end, nodes (empty: every lane), line.
    b_t0: Vec<u64>,
    b_t1: Vec<u64>,
    b_nodes: Vec<Vec<u32>>,
    b_line: Vec<u32>,
    /// Down times (crash to restart): node, start, end.
    d_node: Vec<u32>,
    d_t0: Vec<u64>,
    d_t1: Vec<u64>,
}

/// Collects a run for the timeline; attach it to the trace with [`ferry_simulator::Trace::with_tap`]
/// (shared as `Arc<Mutex<Recorder>>`), then call [`Recorder::page`].
#[derive(Default)]
pub struct Recorder {
    columns: Columns,
    node_index: BTreeMap<String, u32>,
    type_index: BTreeMap<String, u32>,
    reason_index: BTreeMap<String, u32>,
    /// Simulator message id to row.
    message_row: BTreeMap<u64, u32>,
    /// Outcomes seen per message row.
    outcomes: BTreeMap<u32, u32>,
    /// Copies per message row the network duplicated (absent: one copy).
    copies: BTreeMap<u32, u32>,
    /// Latest send time delivered per (from, to), to flag reordering.
    delivered_latest: BTreeMap<(u32, u32), u64>,
    /// WalPush contents per message row: (origin, first, last).
    pushes: BTreeMap<u32, Vec<(u32, u64, u64)>>,
    /// Writes issued and not yet acknowledged, per node, in order.
    pending: BTreeMap<u32, std::collections::VecDeque<usize>>,
    /// Acknowledged writes per (origin, sequence).
    acked: BTreeMap<(u32, u64), usize>,
    /// Nodes each acknowledged write reached.
    reached: BTreeMap<usize, std::collections::BTreeSet<u32>>,
    /// Open bands: (event, nodes, row).
    open: Vec<(String, Vec<u32>, usize)>,
    /// Open down times per node: start.
    down: BTreeMap<u32, u64>,
    last_ns: u64,
}

impl Recorder {
    /// A recorder for a run of these nodes.
    #[must_use]
    pub fn new(nodes: &[String]) -> Self {
        let mut recorder = Self::default();
        for (index, name) in nodes.iter().enumerate() {
            recorder.node_index.insert(name.clone(), index as u32);
        }
        recorder.columns.nodes = nodes.to_vec();
        recorder.columns.marks = MARK_NAMES.to_vec();
        recorder.columns.reasons = vec![String::new()];
        recorder
    }

    fn keep_line(&mut self, text: &str) -> u32 {
        self.columns.lines.push(text.to_owned());
        (self.columns.lines.len() - 1) as u32
    }

    fn node(&self, name: Option<&str>) -> Option<u32> {
        name.and_then(|name| self.node_index.get(name).copied())
    }

    fn intern(index: &mut BTreeMap<String, u32>, list: &mut Vec<String>, name: &str) -> u32 {
        if let Some(found) = index.get(name) {
            return *found;
        }
        list.push(name.to_owned());
        let row = (list.len() - 1) as u32;
        index.insert(name.to_owned(), row);
        row
    }

    fn mark(&mut self, virtual_ns: u64, node: u32, kind: Mark, text: &str) {
        let line = self.keep_line(text);
        self.columns.k_t.push(virtual_ns);
        self.columns.k_node.push(node);
        self.columns.k_kind.push(kind as u8);
        self.columns.k_line.push(line);
    }

    /// Node names among the words of a line (`fault partition [a b] [c d]` names a, b, c, d).
    fn named_nodes(&self, text: &str) -> Vec<u32> {
        let mut nodes: Vec<u32> = text
            .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | ',' | '(' | ')'))
            .filter_map(|word| self.node_index.get(word).copied())
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    fn send(&mut self, virtual_ns: u64, fields: &LineFields<'_>, text: &str) {
        let (Some(from), Some(to), Some(id)) =
            (self.node(fields.from), self.node(fields.to), fields.message_id)
        else {
            return;
        };
        let description = fields.description.unwrap_or("?");
        let kind = description.split_whitespace().next().unwrap_or("?");
        let kind = Self::intern(&mut self.type_index, &mut self.columns.types, kind);
        let line = self.keep_line(text);
        let row = self.columns.m_t.len() as u32;
        self.columns.m_t.push(virtual_ns);
        self.columns.m_from.push(from);
        self.columns.m_to.push(to);
        self.columns.m_type.push(kind);
        self.columns.m_line.push(line);
        self.message_row.insert(id, row);
        if description.starts_with("WalPush") {
            let ranges = self.push_ranges(description);
            if !ranges.is_empty() {
                self.pushes.insert(row, ranges);
            }
        }
    }

    /// The `origin:first..last` ranges of a WalPush description.
    fn push_ranges(&self, description: &str) -> Vec<(u32, u64, u64)> {
        description
            .split_whitespace()
            .filter_map(|word| {
                let (origin, range) = word.rsplit_once(':')?;
                let origin = *self.node_index.get(origin)?;
                let (first, last) = match range.split_once("..") {
                    Some((first, last)) => (first.parse().ok()?, last.parse().ok()?),
                    None => {
                        let only = range.parse().ok()?;
                        (only, only)
                    }
                };
                Some((origin, first, last))
            })
            .collect()
    }

    fn outcome(&mut self, virtual_ns: u64, fields: &LineFields<'_>, text: &str, dropped: bool) {
        let Some(row) = fields.message_id.and_then(|id| self.message_row.get(&id).copied()) else { return };
        let seen = self.outcomes.entry(row).or_insert(0);
        *seen += 1;
        let mut flags = if *seen > 1 { DUPLICATE } else { 0 };
        let from = self.columns.m_from[row as usize];
        let to = self.columns.m_to[row as usize];
        let sent_ns = self.columns.m_t[row as usize];
        let mut reason = 0;
        if dropped {
            flags |= DROPPED;
            reason =
                Self::intern(&mut self.reason_index, &mut self.columns.reasons, fields.reason.unwrap_or("?"));
        } else {
            let latest = self.delivered_latest.entry((from, to)).or_insert(0);
            if sent_ns < *latest {
                flags |= REORDERED;
            }
            *latest = (*latest).max(sent_ns);
            self.reach(virtual_ns, row, to);
        }
        let line = self.keep_line(text);
        self.columns.a_msg.push(row);
        self.columns.a_end.push(virtual_ns);
        self.columns.a_flags.push(flags);
        self.columns.a_reason.push(reason);
        self.columns.a_line.push(line);
    }

    /// A delivered WalPush: the writes it carried reached `to`.
    fn reach(&mut self, virtual_ns: u64, row: u32, to: u32) {
        let Some(ranges) = self.pushes.get(&row) else { return };
        let others = self.columns.nodes.len().saturating_sub(1);
        for &(origin, first, last) in ranges {
            // Bounded by the writes acknowledged, whatever the range claims.
            for (_, &write) in self.acked.range((origin, first)..=(origin, last)) {
                let reached = self.reached.entry(write).or_default();
                if to != origin
                    && reached.insert(to)
                    && reached.len() == others
                    && self.columns.w_all[write] < 0
                {
                    self.columns.w_all[write] = virtual_ns as i64;
                }
            }
        }
    }

    fn event(&mut self, virtual_ns: u64, fields: &LineFields<'_>, text: &str) {
        let Some(node) = self.node(fields.node) else { return };
        match fields.event {
            Some("acked") => {
                let line = self.keep_line(text);
                let write = self.pending.get_mut(&node).and_then(std::collections::VecDeque::pop_front);
                let Some(write) = write else { return };
                self.columns.w_t1[write] = virtual_ns;
                self.columns.w_ack[write] = i64::from(line);
                // `a acked 1f2e…#3 put …`: the origin's sequence number.
                let sequence = text
                    .split_whitespace()
                    .nth(2)
                    .and_then(|word| word.rsplit_once('#'))
                    .and_then(|(_, sequence)| sequence.parse::<u64>().ok());
                if let Some(sequence) = sequence {
                    self.acked.insert((node, sequence), write);
                }
                if self.columns.nodes.len() <= 1 {
                    self.columns.w_all[write] = virtual_ns as i64;
                }
            }
            Some("lww") => self.mark(virtual_ns, node, Mark::Lww, text),
            Some("write-refused") => {
                if let Some(queue) = self.pending.get_mut(&node) {
                    queue.pop_back();
                }
                self.mark(virtual_ns, node, Mark::Refused, text);
            }
            Some("recovered") if virtual_ns == 0 => {}
            Some("audit") => {}
            _ => self.mark(virtual_ns, node, Mark::Event, text),
        }
    }

    fn command(&mut self, virtual_ns: u64, fields: &LineFields<'_>, text: &str) {
        let Some(node) = self.node(fields.node) else { return };
        if !matches!(fields.event, Some("put" | "delete")) {
            return self.mark(virtual_ns, node, Mark::Command, text);
        }
        let line = self.keep_line(text);
        let write = self.columns.w_node.len();
        self.columns.w_node.push(node);
        self.columns.w_t0.push(virtual_ns);
        self.columns.w_t1.push(u64::MAX);
        self.columns.w_ack.push(-1);
        self.columns.w_all.push(-1);
        self.columns.w_line.push(line);
        self.pending.entry(node).or_default().push_back(write);
    }

    fn fault(&mut self, virtual_ns: u64, fields: &LineFields<'_>, text: &str) {
        let event = fields.event.unwrap_or("fault");
        let nodes = self.named_nodes(text);
        if event == "heal" {
            let mut index = 0;
            while index < self.open.len() {
                if HEALED.contains(&self.open[index].0.as_str()) {
                    let (_, _, row) = self.open.remove(index);
                    self.columns.b_t1[row] = virtual_ns;
                } else {
                    index += 1;
                }
            }
            let line = self.keep_line(text);
            self.push_band(virtual_ns, virtual_ns, Vec::new(), line);
            return;
        }
        if text.starts_with("fault end ") {
            if let Some(position) =
                self.open.iter().position(|(name, open, _)| name == event && *open == nodes)
            {
                let (_, _, row) = self.open.remove(position);
                self.columns.b_t1[row] = virtual_ns;
            }
            return;
        }
        // A crash without `until` is an instant; its restart is a fault of its own.
        if LASTING.contains(&event) && (event != "crash" || text.contains(" until ")) {
            let line = self.keep_line(text);
            let row = self.push_band(virtual_ns, u64::MAX, nodes.clone(), line);
            self.open.push((event.to_owned(), nodes, row));
            return;
        }
        if nodes.is_empty() {
            let line = self.keep_line(text);
            self.push_band(virtual_ns, virtual_ns, Vec::new(), line);
        }
        let kind = if event == "clock-jump" { Mark::Clock } else { Mark::Fault };
        for node in nodes {
            self.mark(virtual_ns, node, kind, text);
        }
    }

    fn push_band(&mut self, start_ns: u64, end_ns: u64, nodes: Vec<u32>, line: u32) -> usize {
        self.columns.b_t0.push(start_ns);
        self.columns.b_t1.push(end_ns);
        self.columns.b_nodes.push(nodes);
        self.columns.b_line.push(line);
        self.columns.b_t0.len() - 1
    }

    /// The page for this run, with the report's convergence and failed checks.
    #[must_use]
    pub fn page(mut self, report: &Report) -> String {
        let end_ns = report.virtual_ns.max(self.last_ns);
        let columns = &mut self.columns;
        columns.scenario.clone_from(&report.scenario);
        columns.seed = report.seed;
        columns.end_ns = end_ns;
        columns.heal_ns = report.heal_ns;
        columns.converged_ns = report.converged_ns;
        columns.trace_hash.clone_from(&report.trace_hash);
        columns.failed =
            report.failed_checks().map(|check| [check.name.to_owned(), check.detail.clone()]).collect();
        for end in columns.b_t1.iter_mut().chain(columns.w_t1.iter_mut()) {
            if *end == u64::MAX {
                *end = end_ns;
            }
        }
        for (node, start_ns) in std::mem::take(&mut self.down) {
            columns.d_node.push(node);
            columns.d_t0.push(start_ns);
            columns.d_t1.push(end_ns);
        }
        // Copies with no outcome were still in flight when the run ended (a message the
        // network duplicated has two).
        for row in 0..columns.m_t.len() as u32 {
            let copies = self.copies.get(&row).copied().unwrap_or(1);
            let ended = self.outcomes.get(&row).copied().unwrap_or(0);
            for _ in ended..copies {
                let line = columns.m_line[row as usize];
                columns.a_msg.push(row);
                columns.a_end.push(end_ns);
                columns.a_flags.push(IN_FLIGHT);
                columns.a_reason.push(0);
                columns.a_line.push(line);
            }
        }
        // Arrows in send order (the message rows are), each message's outcomes in order.
        let mut order: Vec<usize> = (0..columns.a_msg.len()).collect();
        order.sort_by_key(|&arrow| (columns.a_msg[arrow], columns.a_end[arrow], arrow));
        columns.a_msg = order.iter().map(|&arrow| columns.a_msg[arrow]).collect();
        columns.a_end = order.iter().map(|&arrow| columns.a_end[arrow]).collect();
        columns.a_flags = order.iter().map(|&arrow| columns.a_flags[arrow]).collect();
        columns.a_reason = order.iter().map(|&arrow| columns.a_reason[arrow]).collect();
        columns.a_line = order.iter().map(|&arrow| columns.a_line[arrow]).collect();

        // serde_json escapes quotes and control characters; `<`, `>` and `&` are escaped
        // too, so no `</script>` or `<!--` can appear inside the block.
        let json = serde_json::to_string(&self.columns).expect("columns of strings and integers serialize");
        let mut escaped = String::with_capacity(json.len() + 64);
        for character in json.chars() {
            match character {
                '<' => escaped.push_str("\\u003c"),
                '>' => escaped.push_str("\\u003e"),
                '&' => escaped.push_str("\\u0026"),
                other => escaped.push(other),
            }
        }
        TEMPLATE.replacen(DATA_MARK, &escaped, 1)
    }
}

impl TraceTap for Recorder {
    fn line(&mut self, virtual_ns: u64, kind: &'static str, fields: &LineFields<'_>, text: &str) {
        self.last_ns = self.last_ns.max(virtual_ns);
        match kind {
            "send" => self.send(virtual_ns, fields, text),
            "deliver" => self.outcome(virtual_ns, fields, text, false),
            "duplicate" => {
                if let Some(row) = fields.message_id.and_then(|id| self.message_row.get(&id).copied()) {
                    *self.copies.entry(row).or_insert(1) += 1;
                }
            }
            "drop" => self.outcome(virtual_ns, fields, text, true),
            "event" => self.event(virtual_ns, fields, text),
            "command" => self.command(virtual_ns, fields, text),
            "fault" => self.fault(virtual_ns, fields, text),
            "crash" => {
                let Some(node) = self.node(fields.node) else { return };
                self.down.entry(node).or_insert(virtual_ns);
                // `a crashed: lost 0B unsynced, kept 12B torn`
                let torn = text
                    .rsplit_once("kept ")
                    .and_then(|(_, rest)| rest.split('B').next())
                    .and_then(|bytes| bytes.parse::<u64>().ok())
                    .is_some_and(|bytes| bytes > 0);
                self.mark(virtual_ns, node, if torn { Mark::Torn } else { Mark::Crash }, text);
                // Writes in flight on a crashed node are never acknowledged.
                if let Some(queue) = self.pending.get_mut(&node) {
                    queue.clear();
                }
            }
            "boot" => {
                let Some(node) = self.node(fields.node) else { return };
                if let Some(start_ns) = self.down.remove(&node) {
                    self.columns.d_node.push(node);
                    self.columns.d_t0.push(start_ns);
                    self.columns.d_t1.push(virtual_ns);
                }
                if virtual_ns > 0 {
                    self.mark(virtual_ns, node, Mark::Restart, text);
                }
            }
            "clock" if virtual_ns > 0 => {
                if let Some(node) = self.node(fields.node) {
                    self.mark(virtual_ns, node, Mark::Clock, text);
                }
            }
            "link-up" | "link-down" => {
                if let Some(node) = self.node(fields.node) {
                    self.mark(virtual_ns, node, Mark::Link, text);
                }
            }
            _ => {}
        }
    }
}

/// A capture written to a file.
type FileCapture = crate::pcap::PcapTap<std::io::BufWriter<std::fs::File>>;

/// The pictures of one run the CLI was asked for: a timeline page and a packet capture.
#[derive(Default)]
pub struct Views {
    timeline: Option<(std::path::PathBuf, std::sync::Arc<std::sync::Mutex<Recorder>>)>,
    pcap: Option<(std::path::PathBuf, std::sync::Arc<std::sync::Mutex<FileCapture>>)>,
}

/// A view that could not be written.
#[derive(Debug)]
pub struct ViewError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub error: std::io::Error,
}

impl Views {
    /// Taps `trace` for a timeline written to `timeline` and a capture written to `pcap`
    /// (created now, so a path that cannot be written fails before the run).
    ///
    /// # Errors
    /// The capture file could not be created.
    pub fn attach(
        scenario: &crate::scenario::Scenario,
        mut trace: ferry_simulator::Trace,
        timeline: Option<&std::path::Path>,
        pcap: Option<&std::path::Path>,
    ) -> Result<(ferry_simulator::Trace, Self), ViewError> {
        let mut views = Self::default();
        if let Some(path) = pcap {
            let error = |error| ViewError { path: path.to_path_buf(), error };
            let file = std::fs::File::create(path).map_err(error)?;
            let port = |transport| match transport {
                crate::scenario::Transport::Datagram => crate::pcap::DATAGRAM_PORT,
                crate::scenario::Transport::Stream => crate::pcap::STREAM_PORT,
                crate::scenario::Transport::Quic => crate::pcap::QUIC_PORT,
            };
            let network = &scenario.network;
            let mut tap = crate::pcap::PcapTap::new(std::io::BufWriter::new(file), port(network.transport))
                .map_err(error)?;
            for link in &network.links {
                tap =
                    tap.with_link_port(link.between[0] as u32, link.between[1] as u32, port(link.transport));
            }
            let tap = std::sync::Arc::new(std::sync::Mutex::new(tap));
            trace = trace.with_tap(Box::new(tap.clone()));
            views.pcap = Some((path.to_path_buf(), tap));
        }
        if let Some(path) = timeline {
            // Fail before the run, not after it, when the page cannot be written.
            std::fs::write(path, b"").map_err(|error| ViewError { path: path.to_path_buf(), error })?;
            let recorder = std::sync::Arc::new(std::sync::Mutex::new(Recorder::new(&scenario.nodes)));
            trace = trace.with_tap(Box::new(recorder.clone()));
            views.timeline = Some((path.to_path_buf(), recorder));
        }
        Ok((trace, views))
    }

    /// Writes what was asked for, once the run is over.
    ///
    /// # Errors
    /// The first file that could not be written.
    pub fn finish(self, report: &Report) -> Result<(), ViewError> {
        if let Some((path, tap)) = self.pcap {
            let mut tap = tap.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            tap.finish().map_err(|error| ViewError { path, error })?;
        }
        if let Some((path, recorder)) = self.timeline {
            let recorder =
                std::mem::take(&mut *recorder.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            std::fs::write(&path, recorder.page(report)).map_err(|error| ViewError { path, error })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let scenario = crate::scenario::parse("x.yaml", "name: x\nduration: 1s\nnodes: [a, b]\n")
            .expect("a valid scenario");
        crate::run::run(&scenario, 0, ferry_simulator::Trace::default())
    }

    #[test]
    fn untrusted_text_cannot_end_the_data_block() {
        // Goal: names, keys and text lines reach the page only as JSON strings, and no
        // `</script>`, `<!--` or `&` survives unescaped inside the block.
        let hostile = "</script><script>alert(1)</script><!--&amp;";
        let mut recorder = Recorder::new(&[hostile.to_owned(), "b".to_owned()]);
        let fields = LineFields { node: Some(hostile), event: Some("put"), ..LineFields::default() };
        TraceTap::line(
            &mut recorder,
            5,
            "command",
            &fields,
            &format!("{hostile} command put \"{hostile}\"=\"v\""),
        );
        let page = recorder.page(&report());
        let block_start = page.find(r#"id="ferry-data">"#).expect("the block") + 16;
        let block_end = block_start + page[block_start..].find("</script>").expect("its end");
        let block = &page[block_start..block_end];
        assert!(!block.contains('<') && !block.contains('>') && !block.contains('&'), "{block}");
        let data: serde_json::Value = serde_json::from_str(block).expect("JSON");
        assert_eq!(data["nodes"][0], hostile, "and the names read back unchanged");
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own two blocks end");
    }
}
