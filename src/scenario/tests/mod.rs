//! Whole-file tests: the CONTRACT.md example and other valid files, and the malformed files
//! of `contract-check`. `errors` has one test per error class with its exact rendered
//! message; `hostile` the files that must fail fast, and `load`.

use super::*;

mod adversary;
mod errors;
mod hostile;

/// The example from CONTRACT.md, verbatim (its trailing remarks are YAML comments).
pub(super) const CONTRACT_EXAMPLE: &str = r##"name: partition-heal            # required
seed: 7                          # optional default seed
duration: 120s                   # hard stop of virtual time (required)
nodes: [a, b, c, d, e]           # names, or a count: `nodes: 5` means n0..n4
topology: full-mesh              # full-mesh | ring | line | star | {edges: [[a, b], ...]}
network:                         # defaults for every link
  transport: datagram            # datagram (each message may be lost/duplicated/reordered)
                                 # | stream (ordered and reliable until a fault breaks the connection)
  latency: 1ms..20ms
  loss: 0.05
  duplicate: 0.01
clock:
  skew: 200ms                    # each node's clock starts off by up to ±skew
  drift_ppm: 100                 # each node's clock runs fast/slow by up to ±drift_ppm
disk:
  fsync_latency: 1ms..5ms
  lose_unsynced: true            # a crash loses writes that were not fsynced
  torn_writes: true              # a crash may leave a torn, partially written last record
workload:
  - {at: 1s, node: a, put: {key: x, value: "1"}}
  - {at: 2s, node: b, delete: x}
  - {from: 0s, until: 60s, rate: 50/s, keys: 100, nodes: all}   # random puts from the seed;
                                 # nodes: all | [a, b] (which nodes write)
faults:
  - {at: 10s, partition: [[a, b], [c, d, e]]}
  - {at: 12s, cut: {from: a, to: b}}                  # one-way
  - {at: 13s, link: {between: [a, c], loss: 0.5, latency: 100ms}}
  - {at: 15s, crash: c}
  - {at: 20s, restart: c}
  - {at: 21s, isolate: d}
  - {at: 22s, clock_jump: {node: b, by: -2s}}
  - {at: 40s, heal: all}
chaos:                           # random faults drawn from the seed until `until`
  until: 60s
  crash: {every: 10s, downtime: 100ms..5s}
  partition: {every: 15s, duration: 1s..10s}
expect:
  converged: true                # all nodes end with identical replicated state
  within: 30s                    # ...at most this long after the last fault ends
  no_data_loss: true             # every acknowledged write is on every node at the end
"##;

pub(super) const SECOND_NS: u64 = 1_000_000_000;
pub(super) const MILLISECOND_NS: u64 = 1_000_000;

/// The three required keys; error tests append to it, so their lines start at 4.
pub(super) const BASE: &str = "name: x\nduration: 10s\nnodes: [a, b, c]\n";

/// The rendered error for `text`, labelled `t.yaml`.
pub(super) fn error(text: &str) -> String {
    match parse("t.yaml", text) {
        Ok(scenario) => panic!("expected an error, parsed {scenario:?}"),
        Err(error) => error.to_string(),
    }
}

/// The rendered error for `BASE` followed by `rest`.
pub(super) fn error_after_base(rest: &str) -> String {
    error(&format!("{BASE}{rest}"))
}

pub(super) fn valid(text: &str) -> Scenario {
    match parse("t.yaml", text) {
        Ok(scenario) => scenario,
        Err(error) => panic!("{error}"),
    }
}

pub(super) fn range_ns(min_ns: u64, max_ns: u64) -> RangeNs {
    RangeNs { min_ns, max_ns }
}

/// Goal: the contract's example parses into exactly the model it describes. Method:
/// compare the whole `Scenario` value.
#[test]
fn contract_example() {
    let mut scenario = valid(CONTRACT_EXAMPLE);
    // Positions are checked by the warning tests; here only the meaning.
    scenario.faults.iter_mut().for_each(|fault| fault.span = Span::START);
    let fault = |at_s: u64, kind: FaultKind| Fault {
        at_ns: at_s * SECOND_NS,
        until_ns: None,
        kind,
        drawn: false,
        span: Span::START,
    };
    let expected = Scenario {
        name: "partition-heal".into(),
        seed: Some(7),
        duration_ns: 120 * SECOND_NS,
        nodes: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        topology: Topology::FullMesh,
        network: Network {
            transport: Transport::Datagram,
            links: Vec::new(),
            latency_ns: range_ns(MILLISECOND_NS, 20 * MILLISECOND_NS),
            loss: 0.05,
            duplicate: 0.01,
            reorder: 0.0,
            bandwidth_bits_per_second: None,
            queue_messages_max: None,
            cluster_secret: false,
        },
        clock: Clock { skew_ns: 200 * MILLISECOND_NS, drift_ppm: 100 },
        disk: Disk {
            fsync_latency_ns: range_ns(MILLISECOND_NS, 5 * MILLISECOND_NS),
            lose_unsynced: true,
            torn_writes: true,
            corrupt_read: 0.0,
            ..Disk::default()
        },
        workload: vec![
            WorkloadItem::Put { at_ns: SECOND_NS, node: 0, key: "x".into(), value: "1".into() },
            WorkloadItem::Delete { at_ns: 2 * SECOND_NS, node: 1, key: "x".into() },
            WorkloadItem::Random(RandomPuts {
                from_ns: 0,
                until_ns: 60 * SECOND_NS,
                rate: Rate { operations_count: 50, period_ns: SECOND_NS },
                keys_count: 100,
                nodes: NodeSelection::All,
                value_bytes: ValueBytes { min: 8, max: 8 },
                key_bytes: None,
                deletes_per_million: 0,
                hot_keys: None,
                burst: None,
            }),
        ],
        faults: vec![
            fault(10, FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] }),
            fault(12, FaultKind::Cut { from: 0, to: 1 }),
            fault(
                13,
                FaultKind::Link(LinkOverride {
                    between: [0, 2],
                    latency_ns: Some(RangeNs::fixed(100 * MILLISECOND_NS)),
                    loss: Some(0.5),
                    duplicate: None,
                    reorder: None,
                    bandwidth_bits_per_second: None,
                    queue_messages_max: None,
                }),
            ),
            fault(15, FaultKind::Crash { node: 2 }),
            fault(20, FaultKind::Restart { node: 2 }),
            fault(21, FaultKind::Isolate { node: 3 }),
            fault(22, FaultKind::ClockJump { node: 1, by_ns: -2 * SECOND_NS as i64 }),
            fault(40, FaultKind::Heal { nodes: NodeSelection::All }),
        ],
        chaos: Some(Chaos {
            until_ns: 60 * SECOND_NS,
            crash: Some(ChaosCrash {
                every_ns: 10 * SECOND_NS,
                downtime_ns: range_ns(100 * MILLISECOND_NS, 5 * SECOND_NS),
            }),
            partition: Some(ChaosWindow {
                every_ns: 15 * SECOND_NS,
                duration_ns: range_ns(SECOND_NS, 10 * SECOND_NS),
            }),
            cut: None,
            clock_jump: None,
            corrupt: None,
            replay: None,
            clog: None,
            pause: None,
            disk_fault: None,
            swarm: false,
        }),
        expect: Expect { converged: true, within_ns: 30 * SECOND_NS, no_data_loss: true, trace_hash: None },
        routing: false,
    };
    assert_eq!(scenario, expected);
    assert_eq!(scenario.faults_end_ns(), 60 * SECOND_NS);
    assert_eq!(scenario.edges().len(), 10);
}

/// Goal: only `name`, `duration` and `nodes` are needed, and every default is the
/// documented one. Method: the smallest file, compared with the `Default` values.
#[test]
fn defaults() {
    let scenario = valid("name: tiny\nduration: 1s\nnodes: 3\n");
    assert_eq!(scenario.nodes, ["n0", "n1", "n2"]);
    assert_eq!(scenario.seed, None);
    assert_eq!(scenario.topology, Topology::FullMesh);
    assert_eq!(scenario.network, Network::default());
    assert_eq!(scenario.network.latency_ns, range_ns(MILLISECOND_NS, 10 * MILLISECOND_NS));
    assert_eq!(scenario.network.transport, Transport::Datagram);
    assert_eq!(scenario.clock, Clock { skew_ns: 0, drift_ppm: 0 });
    assert_eq!(scenario.disk, Disk::default());
    assert_eq!(scenario.disk.fsync_latency_ns, range_ns(MILLISECOND_NS, 5 * MILLISECOND_NS));
    assert!(scenario.disk.lose_unsynced);
    assert!(!scenario.disk.torn_writes);
    assert!(scenario.workload.is_empty());
    assert!(scenario.faults.is_empty());
    assert_eq!(scenario.chaos, None);
    assert_eq!(
        scenario.expect,
        Expect { converged: true, within_ns: 30 * SECOND_NS, no_data_loss: true, trace_hash: None }
    );
    assert!(!scenario.routing);
    assert_eq!(scenario.faults_end_ns(), 0);
}

/// Goal: files from other editors read the same: a byte-order mark, CRLF line ends, and
/// an optional section left empty (`faults:` with nothing under it), which means absent.
/// Method: parse each and compare with the plain form.
#[test]
fn editor_variants() {
    let plain = valid("name: x\nduration: 1s\nnodes: 2\n");
    assert_eq!(valid("\u{feff}name: x\r\nduration: 1s\r\nnodes: 2\r\n"), plain);
    assert_eq!(valid("name: x\nduration: 1s\nnodes: 2\nfaults:\nworkload: ~\nchaos: null\nexpect:\n"), plain);
    assert_eq!(
        error("name: x\r\nduration: ten\r\nnodes: 2\r\n"),
        "t.yaml:2:11: expected a duration like 250ms, found \"ten\""
    );
    assert_eq!(error("name:\nduration: 1s\nnodes: 2\n"), "t.yaml:1:5: expected a scenario name, found null");
}

/// Goal: every extra key beyond the contract is read. Method: one file using them all.
#[test]
fn extras() {
    let scenario = valid(
        "name: extras
duration: 100s
nodes: [a, b, c, d]
topology: {edges: [[b, a], [c, d], [a, b]]}
routing: true
network: {transport: stream, latency: 5ms, reorder: 0.25, bandwidth: 10mbps}
disk: {corrupt_read: 0.001, lose_unsynced: false}
workload:
  - {rate: 3/ms, keys: 10, nodes: [c, a], value_bytes: 0, until: 5s}
faults:
  - {at: 1s, partition: [[a], [b]]}
  - {at: 2s, break: {between: [a, b]}}
  - {at: 3s, heal: [a, d]}
  - {at: 4s, link: {between: [c, d], duplicate: 1, reorder: 0}}
chaos:
  until: 50s
  cut: {every: 1ms, duration: 1s..3s}
  clock_jump: {every: 30s, by: -1s..1.5s}
  swarm: true
",
    );
    assert_eq!(scenario.topology, Topology::Edges(vec![(0, 1), (2, 3)]));
    assert_eq!(scenario.edges(), vec![(0, 1), (2, 3)]);
    assert!(scenario.routing);
    assert_eq!(scenario.network.transport, Transport::Stream);
    assert_eq!(scenario.network.latency_ns, RangeNs::fixed(5 * MILLISECOND_NS));
    assert_eq!(scenario.network.reorder, 0.25);
    assert_eq!(scenario.network.bandwidth_bits_per_second, Some(10_000_000));
    assert_eq!(scenario.disk.corrupt_read, 0.001);
    assert!(!scenario.disk.lose_unsynced);
    assert_eq!(
        scenario.workload,
        vec![WorkloadItem::Random(RandomPuts {
            from_ns: 0,
            until_ns: 5 * SECOND_NS,
            rate: Rate { operations_count: 3, period_ns: MILLISECOND_NS },
            keys_count: 10,
            nodes: NodeSelection::Listed(vec![2, 0]),
            value_bytes: ValueBytes { min: 0, max: 0 },
            key_bytes: None,
            deletes_per_million: 0,
            hot_keys: None,
            burst: None,
        })]
    );
    let kinds: Vec<FaultKind> = scenario.faults.iter().map(|fault| fault.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            FaultKind::Partition { groups: vec![vec![0], vec![1], vec![2, 3]] },
            FaultKind::Break { between: [0, 1] },
            FaultKind::Heal { nodes: NodeSelection::Listed(vec![0, 3]) },
            FaultKind::Link(LinkOverride {
                between: [2, 3],
                latency_ns: None,
                loss: None,
                duplicate: Some(1.0),
                reorder: Some(0.0),
                bandwidth_bits_per_second: None,
                queue_messages_max: None,
            }),
        ]
    );
    let chaos = scenario.chaos.expect("the file has a chaos section");
    assert_eq!(
        chaos.cut,
        Some(ChaosWindow { every_ns: MILLISECOND_NS, duration_ns: range_ns(SECOND_NS, 3 * SECOND_NS) })
    );
    assert_eq!(
        chaos.clock_jump,
        Some(ChaosClockJump {
            every_ns: 30 * SECOND_NS,
            by_ns: SignedRangeNs { min_ns: -(SECOND_NS as i64), max_ns: 1_500_000_000 },
        })
    );
    assert!(chaos.swarm);
    assert_eq!(chaos.crash, None);
}

/// Goal: faults come out in time order, ties in file order, and the crash walk follows
/// time, not file order. Method: a file listing faults backwards.
#[test]
fn faults_sorted_by_time() {
    let scenario = valid(&format!(
        "{BASE}faults:\n  - {{at: 5s, restart: a}}\n  - {{at: 1s, crash: a}}\n  - {{at: 1s, isolate: b}}\n"
    ));
    let faults: Vec<(u64, FaultKind)> =
        scenario.faults.iter().map(|fault| (fault.at_ns, fault.kind.clone())).collect();
    assert_eq!(
        faults,
        vec![
            (SECOND_NS, FaultKind::Crash { node: 0 }),
            (SECOND_NS, FaultKind::Isolate { node: 1 }),
            (5 * SECOND_NS, FaultKind::Restart { node: 0 }),
        ]
    );
}

/// Goal: the five malformed files of `contract-check` (section 3) each give one exact,
/// positioned message. Method: the files' bytes, as the script writes them.
#[test]
fn contract_check_malformed_files() {
    let cases = [
        (
            "typo.yaml",
            "name: x\nduration: 10s\nnodes: [a, b]\nexpect: {convergd: true}\n",
            "typo.yaml:4:10: unknown key `convergd`, did you mean `converged`?",
        ),
        (
            "duration.yaml",
            "name: x\nduration: ten\nnodes: [a, b]\n",
            "duration.yaml:2:11: expected a duration like 250ms, found \"ten\"",
        ),
        (
            "node.yaml",
            "name: x\nduration: 10s\nnodes: [a, b]\nworkload:\n  - {at: 1s, node: c, put: {key: k, value: v}}\n",
            "node.yaml:5:20: node `c` is not declared in `nodes`",
        ),
        (
            "prob.yaml",
            "name: x\nduration: 10s\nnodes: [a, b]\nnetwork: {duplicate: -0.1}\n",
            "prob.yaml:4:22: `duplicate` must be a probability in [0, 1], found -0.1",
        ),
        (
            "syntax.yaml",
            "name: x\nduration: 10s\nnodes: [a, b]\nclock: {skew: 1s\n",
            "syntax.yaml:5:1: invalid yaml: while parsing a flow mapping, did not find expected ',' or '}'",
        ),
    ];
    for (file, text, expected) in cases {
        let rendered = parse(file, text).map(|_| ()).map_err(|error| error.to_string());
        assert_eq!(rendered, Err(expected.to_owned()), "{file}");
    }
}

/// Goal: the keys that make a random workload bite parse into the model. Method: one item
/// with every new key, and the plain number form of `value_bytes` beside a range.
#[test]
fn random_workload_that_bites() {
    let scenario = valid(&format!(
        "{BASE}workload:\n  - {{rate: 10/s, keys: 5, deletes: 0.2, hot_keys: {{keys: 2, share: 0.3, writers: 3}}, \
         value_bytes: 0..65536, burst: {{every: 2s, count: 50}}}}\n  - {{rate: 1/s, keys: 1, value_bytes: 7}}\n"
    ));
    let [WorkloadItem::Random(bites), WorkloadItem::Random(plain)] = scenario.workload.as_slice() else {
        panic!("two random items expected: {:?}", scenario.workload);
    };
    assert_eq!(bites.deletes_per_million, 200_000);
    assert_eq!(bites.hot_keys, Some(HotKeys { keys_count: 2, share_per_million: 300_000, writers_count: 3 }));
    assert_eq!(bites.value_bytes, ValueBytes { min: 0, max: 65_536 });
    assert_eq!(bites.burst, Some(Burst { every_ns: 2 * SECOND_NS, operations_count: 50 }));
    assert_eq!(plain.value_bytes, ValueBytes { min: 7, max: 7 });
    assert_eq!((plain.deletes_per_million, plain.hot_keys, plain.burst), (0, None, None));
    // `writers` defaults to 2.
    let scenario =
        valid(&format!("{BASE}workload:\n  - {{rate: 1/s, keys: 1, hot_keys: {{keys: 1, share: 1}}}}\n"));
    let [WorkloadItem::Random(hot)] = scenario.workload.as_slice() else { panic!("one item expected") };
    assert_eq!(hot.hot_keys.map(|hot| hot.writers_count), Some(2));
}

/// Goal: `network.links` gives single links their own transport, looked up either way round,
/// and the writer writes it back. Method: a datagram run with a QUIC and a stream link.
#[test]
fn network_links() {
    let scenario = valid(&format!(
        "{BASE}network:\n  transport: datagram\n  links:\n    - {{between: [b, a], transport: quic}}\n    - {{between: [b, c], transport: stream}}\n"
    ));
    let network = &scenario.network;
    assert_eq!(
        network.links,
        vec![
            LinkTransport { between: [1, 0], transport: Transport::Quic },
            LinkTransport { between: [1, 2], transport: Transport::Stream },
        ]
    );
    assert_eq!(network.transport_between(0, 1), Transport::Quic);
    assert_eq!(network.transport_between(2, 1), Transport::Stream);
    assert_eq!(network.transport_between(0, 2), Transport::Datagram);
    assert!(network.uses(Transport::Quic) && network.uses(Transport::Datagram));
    let text = to_yaml(&scenario, &[]);
    assert!(
        text.contains("network:\n  links:\n    - {between: [b, a], transport: quic}\n    - {between: [b, c], transport: stream}\n"),
        "{text}"
    );
    assert_eq!(valid(&text), scenario);
    // Left empty, `links` is absent.
    assert!(valid(&format!("{BASE}network: {{links: }}\n")).network.links.is_empty());
    // Warned: an entry for a pair the topology does not link, and loss on a link that
    // `links` makes a stream (while the run's default is datagram).
    let scenario = valid(&format!(
        "{BASE}topology: line\nnetwork: {{links: [{{between: [a, c], transport: quic}}, {{between: [b, c], transport: stream}}]}}\n\
         faults: [{{from: 1s, for: 1s, link: {{between: [c, b], loss: 0.5}}}}]\n"
    ));
    let messages: Vec<String> = warnings(&scenario).into_iter().map(|warning| warning.message).collect();
    let same = valid(&format!(
        "{BASE}network: {{transport: stream, links: [{{between: [a, b], transport: stream}}]}}\n"
    ));
    let same: Vec<String> = warnings(&same).into_iter().map(|warning| warning.message).collect();
    assert_eq!(
        same,
        ["`network.links` gives `a` and `b` the run's own transport: their entry has no effect"]
    );
    assert_eq!(
        messages,
        [
            "the topology has no link between `a` and `c`: their entry in `network.links` has no effect",
            "`loss`, `duplicate` and `reorder` do not apply to stream links (only `latency` does); use \
             `network.transport: datagram`, or `break` and `partition` faults",
        ]
    );
}
