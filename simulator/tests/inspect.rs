//! Goal: what a run's trace says about conflicts and messages is exact, and the JSON-lines
//! sink says the same as the text one without moving the hash. Method: two nodes write the
//! same keys before they hear of each other's writes, once at different milliseconds and
//! once in the same one, with a text sink, a JSON-lines sink and no sink.

use bytes::Bytes;
use ferry_simulator::ferry::{Command, FerryChecker, FerryConfig, FerryNode};
use ferry_simulator::trace::SharedBuffer;
use ferry_simulator::{Control, Fault, SimConfig, Simulation, Trace, TraceFormat, Transport};

const MS: u64 = 1_000_000;

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

/// Runs the two-writer scenario; returns the checker, the trace hash and the sink's text.
fn run(format: Option<TraceFormat>, trace_values: bool) -> (FerryChecker, String, String) {
    run_with(format, trace_values, false)
}

/// [`run`], crashing and restarting `a` after the conflicts when `restart` is set.
fn run_with(
    format: Option<TraceFormat>,
    trace_values: bool,
    restart: bool,
) -> (FerryChecker, String, String) {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let config = SimConfig::new(7, names.clone());
    let mut ferry = FerryConfig::new(7, names, Transport::Datagram);
    ferry.trace_values = trace_values;
    let buffer = SharedBuffer::default();
    let trace = match format {
        Some(format) => Trace::with_format(Some(Box::new(buffer.clone())), format),
        None => Trace::default(),
    };
    let mut simulation: Simulation<FerryNode> = Simulation::new(config, ferry, trace);
    // Pushes leave only after an fsync (at least 1 ms) and take at least 1 ms, so neither
    // node has seen the other's write when it makes its own.
    simulation.schedule_command(100 * MS, 0, put("k", "from-a"));
    simulation.schedule_command(101 * MS, 1, put("k", "from-b"));
    simulation.schedule_command(200 * MS, 0, put("tie", "from-a"));
    simulation.schedule_command(200 * MS, 1, put("tie", "from-b"));
    if restart {
        simulation.schedule_fault(500 * MS, Fault::Crash { node: 0 });
        simulation.schedule_fault(600 * MS, Fault::Restart { node: 0 });
    }
    let mut checker = FerryChecker::default();
    simulation.run_until(2_000 * MS, |simulation| {
        checker.observe(simulation);
        Control::Continue
    });
    assert!(FerryChecker::converged(&simulation));
    simulation.trace_mut().finish().expect("a memory buffer does not fail");
    let hash = simulation.trace().hash_hex();
    (checker, hash, buffer.text())
}

#[test]
fn conflicts_are_traced_exactly_and_counted_once_per_node() {
    let (checker, _, text) = run(Some(TraceFormat::Text), false);
    let lines: Vec<&str> =
        text.lines().filter(|line| line.contains(" lww ")).map(|line| &line[17..]).collect();
    // b's node id is above a's, so b wins the tie of equal timestamps.
    assert_eq!(
        lines,
        [
            r#"a lww "k": put b#1@0.101s+0 beats put a#1@0.100s+0 (later timestamp, replaced)"#,
            r#"b lww "k": put b#1@0.101s+0 beats put a#1@0.100s+0 (later timestamp, kept)"#,
            r#"b lww "tie": put b#2@0.200s+0 beats put a#2@0.200s+0 (equal timestamp, higher origin id, kept)"#,
            r#"a lww "tie": put b#2@0.200s+0 beats put a#2@0.200s+0 (equal timestamp, higher origin id, replaced)"#,
        ]
    );
    assert_eq!(checker.lww_conflicts, 4);
    // Recovery replays the WAL through the store without resolving anything anew.
    let (checker, _, text) = run_with(Some(TraceFormat::Text), false, true);
    // The four writes, and no seal yet: a node seals a second after its first unsealed write.
    assert!(text.contains("a recovered 4 entries"), "{text}");
    assert_eq!(checker.lww_conflicts, 4);
}

#[test]
fn send_lines_say_what_was_sent_and_values_only_on_request() {
    let (_, _, text) = run(Some(TraceFormat::Text), false);
    let pushes: Vec<&str> = text.lines().filter(|line| line.contains(" send WalPush")).collect();
    assert!(pushes.iter().any(|line| line.contains("a -> b") && line.contains(" a:1 ")), "{pushes:#?}");
    assert!(pushes.iter().all(|line| !line.contains("from-")), "{pushes:#?}");
    assert!(text.lines().any(|line| line.contains(" send WalAck msg_id=")), "{text}");
    let (_, _, with_values) = run(Some(TraceFormat::Text), true);
    assert!(
        with_values
            .lines()
            .any(|line| line.contains(r#"send WalPush"#) && line.contains(r#"{a#1 put "k"="from-a"}"#)),
        "{with_values}"
    );
}

#[test]
fn json_lines_parse_carry_kinds_and_keep_the_hash() {
    let (_, hash_silent, _) = run(None, false);
    let (_, hash_text, text) = run(Some(TraceFormat::Text), true);
    let (checker, hash_json, json) = run(Some(TraceFormat::Jsonl), true);
    assert_eq!(hash_text, hash_silent);
    assert_eq!(hash_json, hash_silent);
    let kinds = [
        "clock",
        "boot",
        "send",
        "deliver",
        "drop",
        "duplicate",
        "timer",
        "disk-append",
        "disk-sync",
        "disk-synced",
        "disk-truncate",
        "crash",
        "link-up",
        "link-down",
        "connect",
        "fault",
        "command",
        "event",
        "note",
    ];
    let text_lines: Vec<&str> = text.lines().collect();
    let json_lines: Vec<&str> = json.lines().collect();
    assert_eq!(json_lines.len(), text_lines.len());
    let mut sends = std::collections::BTreeMap::new();
    let mut lww_count = 0;
    for (line, text_line) in json_lines.iter().zip(&text_lines) {
        let value: serde_json::Value = serde_json::from_str(line).expect("every line is one JSON object");
        let kind = value["kind"].as_str().expect("every line has a kind");
        assert!(kinds.contains(&kind), "{line}");
        assert!(value["t_ns"].is_u64(), "{line}");
        // The text field is the text line without its time.
        assert_eq!(value["text"].as_str(), Some(&text_line[17..]), "{line}");
        match kind {
            "send" => {
                let id = value["message_id"].as_u64().expect("a send has a message id");
                assert!(value["description"].is_string() && value["bytes"].is_u64(), "{line}");
                assert_eq!(value["node"], value["from"], "{line}");
                sends.insert(id, (value["from"].clone(), value["to"].clone()));
            }
            "deliver" => {
                let id = value["message_id"].as_u64().expect("a delivery has a message id");
                let (from, to) = sends.get(&id).expect("a delivery follows its send");
                assert_eq!((&value["from"], &value["to"]), (from, to), "{line}");
                assert_eq!(value["node"], value["to"], "{line}");
            }
            "event" if value["event"] == "lww" => lww_count += 1,
            "command" => assert_eq!(value["event"], "put", "{line}"),
            _ => {}
        }
    }
    assert_eq!(lww_count, checker.lww_conflicts);
    assert!(!sends.is_empty());
}
