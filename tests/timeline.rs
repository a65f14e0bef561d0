//! `--timeline` and `--pcap`: the page is self-contained and byte-identical for a seed, and
//! its data accounts for every message of the run; the capture holds one packet per send.

mod support;

use std::path::Path;

use ferry::run::{self, Report};
use ferry::scenario::Scenario;
use ferry::timeline::Views;
use ferry_simulator::Trace;
use support::{ferry, fresh_directory};

fn load(path: &str) -> Scenario {
    ferry::scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect("a library scenario is valid")
}

fn run_with_views(scenario: &Scenario, seed: u64, timeline: Option<&Path>, pcap: Option<&Path>) -> Report {
    let (trace, views) = Views::attach(scenario, Trace::default(), timeline, pcap).expect("writable paths");
    let report = run::run(scenario, seed, trace);
    views.finish(&report).expect("the views are written");
    report
}

/// The JSON inside the page's data block.
fn data_of(page: &str) -> serde_json::Value {
    let open = r#"<script type="application/json" id="ferry-data">"#;
    let start = page.find(open).expect("a data block") + open.len();
    let end = start + page[start..].find("</script>").expect("the block ends");
    let block = &page[start..end];
    assert!(!block.contains('<'), "no markup can hide in the data block");
    serde_json::from_str(block).expect("the data block is JSON")
}

fn count(value: &serde_json::Value) -> u64 {
    value.as_array().expect("a column").len() as u64
}

#[test]
fn timeline_is_self_contained_identical_per_seed_and_accounts_for_every_message() {
    let scenario = load("scenarios/partition-heal.yaml");
    let directory = fresh_directory("timeline_page");
    let (first_path, second_path) = (directory.join("first.html"), directory.join("second.html"));
    let report = run_with_views(&scenario, 1, Some(&first_path), None);
    let again = run_with_views(&scenario, 1, Some(&second_path), None);
    let plain = run::run(&scenario, 1, Trace::default());
    assert_eq!(report.trace_hash, plain.trace_hash, "a tap does not change the run");
    assert_eq!(again.trace_hash, plain.trace_hash);
    let page = std::fs::read_to_string(&first_path).expect("the page");
    assert_eq!(page, std::fs::read_to_string(&second_path).expect("the page"), "same seed, same bytes");
    for fetch in ["http:", "https:", "src=", "href=", "@import", "url(", "fetch(", "XMLHttpRequest"] {
        assert!(!page.contains(fetch), "the page fetches nothing: found {fetch}");
    }
    assert!(page.contains("default-src 'none'"), "and its policy forbids it");

    let data = data_of(&page);
    let stats = &report.stats;
    assert_eq!(data["nodes"], serde_json::json!(["a", "b", "c", "d", "e"]));
    assert_eq!(count(&data["m_t"]), stats.sent, "one message row per send");
    assert_eq!(count(&data["a_msg"]), stats.sent + stats.duplicated, "an arrow per copy of each message");
    let flags = data["a_flags"].as_array().expect("flags");
    let dropped = flags.iter().filter(|flag| flag.as_u64().expect("a flag") & 1 != 0).count() as u64;
    assert_eq!(dropped, stats.dropped, "every drop ends an arrow");
    let reordered = flags.iter().filter(|flag| flag.as_u64().expect("a flag") & 4 != 0).count() as u64;
    assert!(reordered > 0, "reordered deliveries are flagged");
    let acked = data["w_ack"].as_array().expect("acks").iter().filter(|ack| ack.as_i64() >= Some(0)).count();
    assert_eq!(acked, report.writes_acked, "every acknowledged write is drawn from issue to ack");
    let everywhere =
        data["w_all"].as_array().expect("reach").iter().filter(|at| at.as_i64() >= Some(0)).count();
    assert!(everywhere > 0, "writes that reached every node say when");
    // Two partitions as bands over their nodes, two heals as instants over every lane.
    let bands: Vec<(u64, u64, usize)> = (0..count(&data["b_t0"]) as usize)
        .map(|band| {
            let nodes = data["b_nodes"][band].as_array().expect("nodes").len();
            (data["b_t0"][band].as_u64().expect("start"), data["b_t1"][band].as_u64().expect("end"), nodes)
        })
        .collect();
    assert_eq!(
        bands,
        vec![
            (3_000_000_000, 9_000_000_000, 5),
            (9_000_000_000, 9_000_000_000, 0),
            (12_000_000_000, 16_000_000_000, 5),
            (16_000_000_000, 16_000_000_000, 0),
        ]
    );
    assert_eq!(data["converged_ns"].as_u64(), report.converged_ns);
    assert_eq!(data["failed"], serde_json::json!([]));
}

#[test]
fn timeline_marks_crashes_restarts_and_the_failed_check() {
    // crash-restart has crashes and restarts; a failing fixture names its failed check.
    let scenario = load("scenarios/crash-restart.yaml");
    let directory = fresh_directory("timeline_marks");
    let path = directory.join("crash.html");
    run_with_views(&scenario, scenario.seed.unwrap_or(0), Some(&path), None);
    let data = data_of(&std::fs::read_to_string(&path).expect("the page"));
    let kinds: Vec<u64> =
        data["k_kind"].as_array().expect("kinds").iter().filter_map(serde_json::Value::as_u64).collect();
    assert!(kinds.contains(&0) || kinds.contains(&2), "a crash is marked");
    assert!(kinds.contains(&1), "a restart is marked");
    assert!(count(&data["d_node"]) > 0, "down time is drawn");

    let failing = load("tests/scenarios/impatient.yaml");
    let path = directory.join("failing.html");
    let report = run_with_views(&failing, failing.seed.unwrap_or(0), Some(&path), None);
    assert!(!report.passed(), "the fixture fails");
    let data = data_of(&std::fs::read_to_string(&path).expect("the page"));
    let failed: Vec<&str> = data["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|pair| pair[0].as_str().expect("a name"))
        .collect();
    let expected: Vec<&str> = report.failed_checks().map(|check| check.name).collect();
    assert_eq!(failed, expected);
}

#[test]
fn capture_has_one_packet_per_send_at_virtual_times() {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let directory = fresh_directory("timeline_pcap");
    for (file, port) in
        [("scenarios/partition-heal.yaml", 7400u16), ("scenarios/stream-transport.yaml", 7401)]
    {
        let scenario = load(file);
        let path = directory.join("run.pcapng");
        let report = run_with_views(&scenario, 1, None, Some(&path));
        let mut reader =
            PcapNgReader::new(std::fs::File::open(&path).expect("the capture")).expect("a pcapng file");
        let (mut packets, mut last, mut first) = (0u64, std::time::Duration::ZERO, None);
        while let Some(block) = reader.next_block() {
            if let Block::EnhancedPacket(packet) = block.expect("a valid block") {
                assert!(packet.timestamp >= last, "{file}: timestamps never go back");
                last = packet.timestamp;
                first.get_or_insert_with(|| packet.data.to_vec());
                packets += 1;
            }
        }
        assert_eq!(packets, report.stats.sent, "{file}: one packet per send");
        assert!(last.as_nanos() <= u128::from(report.virtual_ns), "{file}: stamped with virtual time");
        let first = first.expect("a packet");
        assert_eq!(&first[12..19], &[10, 0, 0, 1, 10, 0, 0], "{file}: the first message is the first node's");
        assert_eq!(u16::from_be_bytes([first[22], first[23]]), port, "{file}: the transport's port");
        // A frame: a varint length, then the envelope header of a Hello.
        let payload = &first[28..];
        let prefix = if payload[0] & 0x80 == 0 { 1 } else { 2 };
        assert_eq!(&payload[prefix..prefix + 4], b"FY\x01\x01", "{file}: magic, version, Hello");
        tshark_reads(&path, packets, port == 7400);
    }
}

/// Goal: in a run that mixes transports, each link's packets go to its transport's port, and
/// a QUIC link's are real QUIC packets. Method: `scenarios/mixed-transports.yaml` (a-b and
/// d-e QUIC, b-c and e-a stream, c-d datagram); every packet's port by pair of addresses.
#[test]
fn a_mixed_run_captures_each_link_on_its_transports_port() {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let directory = fresh_directory("timeline_pcap_mixed");
    let scenario = load("scenarios/mixed-transports.yaml");
    let path = directory.join("run.pcapng");
    let report = run_with_views(&scenario, 1, None, Some(&path));
    assert!(report.passed(), "{:?}", report.checks);
    let mut reader =
        PcapNgReader::new(std::fs::File::open(&path).expect("the capture")).expect("a pcapng file");
    let mut ports: std::collections::BTreeMap<(u8, u8), std::collections::BTreeSet<u16>> = Default::default();
    let mut quic_long_headers = 0;
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(packet) = block.expect("a valid block") {
            let data = &packet.data;
            let (from, to) = (data[15], data[19]);
            let port = u16::from_be_bytes([data[22], data[23]]);
            ports.entry((from.min(to), from.max(to))).or_default().insert(port);
            // QUIC's long header: form and fixed bits set, then version 1.
            if port == 4433 && data[28] & 0xc0 == 0xc0 && data[29..33] == [0, 0, 0, 1] {
                quic_long_headers += 1;
            }
        }
    }
    // Nodes a..e are 10.0.0.1 to 10.0.0.5.
    let expected: std::collections::BTreeMap<(u8, u8), std::collections::BTreeSet<u16>> =
        [((1, 2), 4433), ((2, 3), 7401), ((3, 4), 7400), ((4, 5), 4433), ((1, 5), 7401)]
            .into_iter()
            .map(|(pair, port)| (pair, std::collections::BTreeSet::from([port])))
            .collect();
    assert_eq!(ports, expected);
    assert!(quic_long_headers >= 4, "QUIC handshakes open with long headers: {quic_long_headers}");
}

/// With tshark installed, the shipped dissector decodes every packet as ferry (on a stream
/// link, every packet that holds the start of a frame).
fn tshark_reads(path: &Path, packets: u64, every: bool) {
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ferry.lua");
    let output = std::process::Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-r")
        .arg(path)
        .args(["-Y", "ferry.magic", "-T", "fields", "-e", "frame.number"])
        .output();
    let Ok(output) = output else {
        eprintln!("skipped the tshark check: tshark is not installed");
        return;
    };
    assert!(output.status.success(), "tshark: {}", String::from_utf8_lossy(&output.stderr));
    let decoded = String::from_utf8_lossy(&output.stdout).lines().count() as u64;
    assert!(decoded > 0 && decoded <= packets, "tshark decoded {decoded} of {packets} packets as ferry");
    if every {
        assert_eq!(decoded, packets, "every datagram is one ferry frame");
    }
}

#[test]
fn cli_writes_the_views_and_refuses_unwritable_paths() {
    let directory = fresh_directory("timeline_cli");
    let page = directory.join("run.html");
    let capture = directory.join("run.pcapng");
    let outcome = ferry(&[
        "run",
        "scenarios/quickstart.yaml",
        "--timeline",
        page.to_str().expect("a UTF-8 path"),
        "--pcap",
        capture.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(page.exists() && capture.exists());
    let plain = ferry(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(outcome.stdout, plain.stdout, "the views change nothing in the report");

    let missing = directory.join("no-such-directory").join("run.html");
    let refused =
        ferry(&["run", "scenarios/quickstart.yaml", "--timeline", missing.to_str().expect("a UTF-8 path")]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("run.html"), "{}", refused.stderr);
    assert_eq!(refused.stdout, "");

    // A sweep writes pages for failing seeds only.
    let pages = directory.join("pages");
    let sweep = ferry(&[
        "sweep",
        "tests/scenarios/impatient.yaml",
        "scenarios/quickstart.yaml",
        "--seeds",
        "0..2",
        "--jobs",
        "1",
        "--timeline-dir",
        pages.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(sweep.code, 1, "{}", sweep.stdout);
    let mut written: Vec<String> = std::fs::read_dir(&pages)
        .expect("the directory")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let failing: usize = sweep.stdout.lines().filter(|line| line.contains(" failed (")).count();
    assert_eq!(written.len(), failing, "{written:?}\n{}", sweep.stdout);
    assert!(
        written.iter().all(|name| name.starts_with("impatient-") && name.ends_with(".html")),
        "{written:?}"
    );
}
