//! Whole-file tests: the CONTRACT.md example, one test per error class with its exact
//! rendered message, the malformed files of `contract-check`, and hostile inputs.

use super::*;

/// The example from CONTRACT.md, verbatim (its trailing remarks are YAML comments).
const CONTRACT_EXAMPLE: &str = r##"name: partition-heal            # required
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

const SECOND_NS: u64 = 1_000_000_000;
const MILLISECOND_NS: u64 = 1_000_000;

/// The three required keys; error tests append to it, so their lines start at 4.
const BASE: &str = "name: x\nduration: 10s\nnodes: [a, b, c]\n";

/// The rendered error for `text`, labelled `t.yaml`.
fn error(text: &str) -> String {
    match parse("t.yaml", text) {
        Ok(scenario) => panic!("expected an error, parsed {scenario:?}"),
        Err(error) => error.to_string(),
    }
}

/// The rendered error for `BASE` followed by `rest`.
fn error_after_base(rest: &str) -> String {
    error(&format!("{BASE}{rest}"))
}

fn valid(text: &str) -> Scenario {
    match parse("t.yaml", text) {
        Ok(scenario) => scenario,
        Err(error) => panic!("{error}"),
    }
}

fn range_ns(min_ns: u64, max_ns: u64) -> RangeNs {
    RangeNs { min_ns, max_ns }
}

/// Goal: the contract's example parses into exactly the model it describes. Method:
/// compare the whole `Scenario` value.
#[test]
fn contract_example() {
    let scenario = valid(CONTRACT_EXAMPLE);
    let fault = |at_s: u64, kind: FaultKind| Fault { at_ns: at_s * SECOND_NS, kind };
    let expected = Scenario {
        name: "partition-heal".into(),
        seed: Some(7),
        duration_ns: 120 * SECOND_NS,
        nodes: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        topology: Topology::FullMesh,
        network: Network {
            transport: Transport::Datagram,
            latency_ns: range_ns(MILLISECOND_NS, 20 * MILLISECOND_NS),
            loss: 0.05,
            duplicate: 0.01,
            reorder: 0.0,
            bandwidth_bits_per_second: None,
        },
        clock: Clock { skew_ns: 200 * MILLISECOND_NS, drift_ppm: 100 },
        disk: Disk {
            fsync_latency_ns: range_ns(MILLISECOND_NS, 5 * MILLISECOND_NS),
            lose_unsynced: true,
            torn_writes: true,
            corrupt_read: 0.0,
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
                value_bytes: 8,
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
            swarm: false,
        }),
        expect: Expect { converged: true, within_ns: 30 * SECOND_NS, no_data_loss: true },
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
    assert_eq!(scenario.expect, Expect { converged: true, within_ns: 30 * SECOND_NS, no_data_loss: true });
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
            value_bytes: 0,
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

// ----- one test per error class -----

/// Goal: YAML syntax errors carry the parser's position. Method: a stray indentation.
#[test]
fn syntax_error() {
    assert_eq!(
        error("name: x\n  duration: 10s\n"),
        "t.yaml:2:11: invalid yaml: mapping values are not allowed in this context"
    );
    assert_eq!(
        error("name: [x\n"),
        "t.yaml:2:1: invalid yaml: while parsing a flow sequence, expected ',' or ']'"
    );
}

/// Goal: unknown keys point at the key, with a hint when it is a near miss and the list of
/// keys otherwise. Method: several sections.
#[test]
fn unknown_keys() {
    assert_eq!(
        error_after_base("topolgy: ring\n"),
        "t.yaml:4:1: unknown key `topolgy`, did you mean `topology`?"
    );
    assert_eq!(
        error_after_base("clock: {speed: 2}\n"),
        "t.yaml:4:9: unknown key `speed`, expected `skew` or `drift_ppm`"
    );
    assert_eq!(
        error_after_base("faults:\n  - {at: 1s, crahs: a}\n"),
        "t.yaml:5:14: unknown key `crahs`, did you mean `crash`?"
    );
    assert_eq!(
        error_after_base("chaos: {until: 5s, crash: {every: 1s, downtim: 1s}}\n"),
        "t.yaml:4:39: unknown key `downtim`, did you mean `downtime`?"
    );
    assert_eq!(
        error_after_base("colour: red\n"),
        "t.yaml:4:1: unknown key `colour`, expected one of `name`, `seed`, `duration`, `nodes`, `topology`, \
         `network`, `clock`, `disk`, `workload`, `faults`, `chaos`, `expect` or `routing`"
    );
    assert_eq!(
        error_after_base("workload:\n  - {at: 1s, node: a, put: {key: k, value: v}, keys: 3}\n"),
        "t.yaml:5:48: key `keys` does not apply to a `put` item"
    );
    assert_eq!(
        error_after_base("topology: fullmesh\n"),
        "t.yaml:4:11: unknown topology `fullmesh`, did you mean `full-mesh`?"
    );
    assert_eq!(
        error_after_base("network: {transport: tcp}\n"),
        "t.yaml:4:22: unknown transport `tcp`, expected `datagram` or `stream`"
    );
    assert_eq!(error_after_base("expect: {within: 1s, within: 2s}\n"), "t.yaml:4:22: duplicate key `within`");
}

/// Goal: a value of the wrong type names what was expected and quotes what was found.
/// Method: one per value form.
#[test]
fn wrong_types() {
    let cases = [
        ("seed: -1\n", "t.yaml:4:7: expected a whole number like 7, found \"-1\""),
        ("routing: yes\n", "t.yaml:4:10: expected true or false, found \"yes\""),
        ("network: {loss: high}\n", "t.yaml:4:17: expected a probability like 0.05, found \"high\""),
        (
            "network: {latency: fast}\n",
            "t.yaml:4:20: expected a duration or a range like 1ms..10ms, found \"fast\"",
        ),
        ("network: [loss]\n", "t.yaml:4:10: expected a mapping of network settings, found a list"),
        ("expect: {within: }\n", "t.yaml:4:16: expected a duration like 250ms, found null"),
        ("expect: {within: [1s]}\n", "t.yaml:4:18: expected a duration like 250ms, found a list"),
        ("disk: {fsync_latency: 1.5ns..2ns}\n", "t.yaml:4:23: duration 1.5ns is finer than a nanosecond"),
        ("faults: [{at: -1s, crash: a}]\n", "t.yaml:4:15: duration -1s must not be negative"),
        (
            "faults: [{at: 1s, clock_jump: {node: a, by: soon}}]\n",
            "t.yaml:4:45: expected a duration like -2s or 250ms, found \"soon\"",
        ),
        ("workload: [{rate: 50/h, keys: 1}]\n", "t.yaml:4:19: expected a rate like 50/s, found \"50/h\""),
        ("workload: [{rate: 200/ms, keys: 1}]\n", "t.yaml:4:19: rate 200/ms is more than 100000 per second"),
        ("network: {bandwidth: fast}\n", "t.yaml:4:22: expected a bandwidth like 10mbps, found \"fast\""),
        (
            "faults: [{at: 1s, cut: {from: a, to: b}, crash: a}]\n",
            "t.yaml:4:42: fault has both `cut` and `crash`",
        ),
        (
            "faults: [{at: 1s}]\n",
            "t.yaml:4:10: fault needs one of `partition`, `cut`, `link`, `crash`, `restart`, `isolate`, `clock_jump`, `heal` or `break`",
        ),
        (
            "workload: [{at: 1s, node: a}]\n",
            "t.yaml:4:12: workload item needs one of `put`, `delete` or `rate`",
        ),
        (
            "workload: [{at: 1s, node: a, delete: \"\"}]\n",
            "t.yaml:4:38: expected a non-empty key, found \"\"",
        ),
        (
            "faults: [{at: 1s, link: {between: [a, b, c]}}]\n",
            "t.yaml:4:35: expected a list of two node names like [a, b], found a list of 3",
        ),
        (
            "faults: [{at: 1s, heal: some}]\n",
            "t.yaml:4:25: expected `all` or a list of node names, found \"some\"",
        ),
        (
            "faults: [{at: 1s, crash: a}]\ntopology: [ring]\n",
            "t.yaml:5:11: expected `full-mesh`, `ring`, `line`, `star` or {edges: [[a, b]]}, found a list",
        ),
        (
            "chaos: {until: 5s, crash: {every: 0s, downtime: 1s}}\n",
            "t.yaml:4:35: `every` 0s is shorter than the minimum 1ms",
        ),
        ("clock: {drift_ppm: 1000000}\n", "t.yaml:4:20: `drift_ppm` 1000000 is outside 0..=100000"),
        ("workload: [{rate: 1/s, keys: 0}]\n", "t.yaml:4:30: `keys` 0 is outside 1..=1000000"),
        (
            "seed: 18446744073709551616\n",
            "t.yaml:4:7: seed 18446744073709551616 is outside 0..=18446744073709551615",
        ),
        ("name: again\n", "t.yaml:4:1: duplicate key `name`"),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
    assert_eq!(
        error("name: x\nduration: 0s\nnodes: 1\n"),
        "t.yaml:2:11: `duration` 0s is shorter than the minimum 1ns"
    );
    assert_eq!(
        error("name: \"\"\nduration: 1s\nnodes: 1\n"),
        "t.yaml:1:7: expected a non-empty scenario name, found \"\""
    );
    assert_eq!(
        error("- name\n"),
        "t.yaml:1:1: expected a mapping with `name`, `duration` and `nodes`, found a list"
    );
}

/// Goal: a missing required key points at the mapping that should hold it. Method: the
/// top level and a flow mapping.
#[test]
fn missing_keys() {
    assert_eq!(error("duration: 1s\nnodes: 2\n"), "t.yaml:1:1: missing required key `name`");
    assert_eq!(error("name: x\nnodes: 2\n"), "t.yaml:1:1: missing required key `duration`");
    assert_eq!(error("name: x\nduration: 1s\n"), "t.yaml:1:1: missing required key `nodes`");
    assert_eq!(error_after_base("faults:\n  - {crash: a}\n"), "t.yaml:5:5: missing required key `at`");
    assert_eq!(
        error_after_base("faults:\n  - {at: 1s, cut: {from: a}}\n"),
        "t.yaml:5:19: missing required key `to`"
    );
    assert_eq!(
        error_after_base("chaos:\n  crash: {every: 1s, downtime: 1s}\n"),
        "t.yaml:5:3: missing required key `until`"
    );
    assert_eq!(error_after_base("workload: [{rate: 5/s}]\n"), "t.yaml:4:12: missing required key `keys`");
    assert_eq!(
        error_after_base("workload: [{at: 1s, node: a, put: {key: k}}]\n"),
        "t.yaml:4:35: missing required key `value`"
    );
    assert_eq!(error_after_base("topology: {}\n"), "t.yaml:4:11: missing required key `edges`");
}

/// Goal: every place that names a node rejects an undeclared one at the name. Method: one
/// case per place.
#[test]
fn undeclared_nodes() {
    let cases = [
        ("faults: [{at: 1s, crash: z}]\n", "t.yaml:4:26: node `z` is not declared in `nodes`"),
        ("faults: [{at: 1s, restart: z}]\n", "t.yaml:4:28: node `z` is not declared in `nodes`"),
        ("faults: [{at: 1s, isolate: z}]\n", "t.yaml:4:28: node `z` is not declared in `nodes`"),
        (
            "faults: [{at: 1s, partition: [[a], [b, z]]}]\n",
            "t.yaml:4:40: node `z` is not declared in `nodes`",
        ),
        ("faults: [{at: 1s, cut: {from: z, to: a}}]\n", "t.yaml:4:31: node `z` is not declared in `nodes`"),
        ("faults: [{at: 1s, link: {between: [a, z]}}]\n", "t.yaml:4:39: node `z` is not declared in `nodes`"),
        (
            "faults: [{at: 1s, clock_jump: {node: z, by: 1s}}]\n",
            "t.yaml:4:38: node `z` is not declared in `nodes`",
        ),
        ("faults: [{at: 1s, heal: [a, z]}]\n", "t.yaml:4:29: node `z` is not declared in `nodes`"),
        ("workload: [{at: 1s, node: z, delete: k}]\n", "t.yaml:4:27: node `z` is not declared in `nodes`"),
        (
            "workload: [{rate: 1/s, keys: 1, nodes: [z]}]\n",
            "t.yaml:4:41: node `z` is not declared in `nodes`",
        ),
        ("topology: {edges: [[a, b], [b, z]]}\n", "t.yaml:4:32: node `z` is not declared in `nodes`"),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
}

/// Goal: node declarations are checked: names, duplicates, emptiness, count. Method: one
/// case each.
#[test]
fn node_declarations() {
    let with_nodes = |nodes: &str| error(&format!("name: x\nduration: 1s\nnodes: {nodes}\n"));
    assert_eq!(with_nodes("[a, b, a]"), "t.yaml:3:15: duplicate node name `a`");
    assert_eq!(with_nodes("[]"), "t.yaml:3:8: `nodes` is empty: declare at least one node");
    assert_eq!(with_nodes("0"), "t.yaml:3:8: node count 0 is outside 1..=10000");
    assert_eq!(with_nodes("100000000"), "t.yaml:3:8: node count 100000000 is outside 1..=10000");
    assert_eq!(
        with_nodes("five"),
        "t.yaml:3:8: expected a list of node names or a count like 5, found \"five\""
    );
    assert_eq!(
        with_nodes("[a, \"b c\"]"),
        "t.yaml:3:12: invalid node name \"b c\": use 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`"
    );
    assert_eq!(
        with_nodes(&"x".repeat(65)),
        "t.yaml:3:8: expected a list of node names or a count like 5, found \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\""
    );
    assert_eq!(
        with_nodes(&format!("[{}]", "x".repeat(65))),
        "t.yaml:3:9: invalid node name \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\": \
         use 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`"
    );
    assert_eq!(with_nodes("[a, all]"), "t.yaml:3:12: node name `all` is reserved");
    assert_eq!(with_nodes("[a, [b]]"), "t.yaml:3:12: expected a node name, found a list");
    let many = vec!["n"; NODE_COUNT_MAX + 1]
        .iter()
        .enumerate()
        .map(|(index, _)| format!("n{index}"))
        .collect::<Vec<_>>();
    assert_eq!(
        with_nodes(&format!("[{}]", many.join(", "))),
        "t.yaml:3:8: node count 10001 is outside 1..=10000"
    );
    assert_eq!(valid("name: x\nduration: 1s\nnodes: 10000\n").nodes.len(), NODE_COUNT_MAX);
}

/// Goal: lists of nodes refuse repeats, self-links and empty groups. Method: one case each.
#[test]
fn node_lists() {
    let cases = [
        ("faults: [{at: 1s, partition: [[a, b], [b]]}]\n", "t.yaml:4:40: node `b` is listed twice"),
        ("faults: [{at: 1s, partition: [[a], []]}]\n", "t.yaml:4:36: partition group is empty"),
        ("faults: [{at: 1s, partition: []}]\n", "t.yaml:4:30: partition is empty"),
        ("faults: [{at: 1s, heal: []}]\n", "t.yaml:4:25: `heal` is empty"),
        ("faults: [{at: 1s, cut: {from: a, to: a}}]\n", "t.yaml:4:38: node `a` cannot be linked to itself"),
        ("faults: [{at: 1s, link: {between: [b, b]}}]\n", "t.yaml:4:39: node `b` cannot be linked to itself"),
        ("topology: {edges: [[c, c]]}\n", "t.yaml:4:24: node `c` cannot be linked to itself"),
        ("workload: [{rate: 1/s, keys: 1, nodes: [a, a]}]\n", "t.yaml:4:44: node `a` is listed twice"),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
}

/// Goal: empty and inverted ranges are refused where written. Method: network, disk and
/// chaos ranges.
#[test]
fn bad_ranges() {
    let cases = [
        ("network: {latency: 5s..1s}\n", "t.yaml:4:20: range 5s..1s is inverted: its start is after its end"),
        (
            "network: {latency: 1s..1s}\n",
            "t.yaml:4:20: range 1s..1s is empty: write a single duration for a fixed value",
        ),
        (
            "disk: {fsync_latency: 5ms..1ms}\n",
            "t.yaml:4:23: range 5ms..1ms is inverted: its start is after its end",
        ),
        (
            "chaos: {until: 5s, crash: {every: 1s, downtime: 2s..1s}}\n",
            "t.yaml:4:49: range 2s..1s is inverted: its start is after its end",
        ),
        (
            "chaos: {until: 5s, clock_jump: {every: 1s, by: 1s..-1s}}\n",
            "t.yaml:4:48: range 1s..-1s is inverted: its start is after its end",
        ),
        (
            "faults: [{at: 1s, link: {between: [a, b], latency: 3ms..3ms}}]\n",
            "t.yaml:4:52: range 3ms..3ms is empty: write a single duration for a fixed value",
        ),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
}

/// Goal: probabilities outside [0, 1] are refused with the key's name. Method: each key.
#[test]
fn bad_probabilities() {
    let cases = [
        ("network: {loss: 1.5}\n", "t.yaml:4:17: `loss` must be a probability in [0, 1], found 1.5"),
        ("network: {reorder: 2}\n", "t.yaml:4:20: `reorder` must be a probability in [0, 1], found 2"),
        (
            "disk: {corrupt_read: -0.5}\n",
            "t.yaml:4:22: `corrupt_read` must be a probability in [0, 1], found -0.5",
        ),
        (
            "faults: [{at: 1s, link: {between: [a, b], loss: 1.01}}]\n",
            "t.yaml:4:49: `loss` must be a probability in [0, 1], found 1.01",
        ),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
}

/// Goal: crash and restart must alternate per node, in time order. Method: a restart
/// without crash, a restart before its crash in time, a double crash, a double restart.
#[test]
fn crash_restart_order() {
    assert_eq!(
        error_after_base("faults:\n  - {at: 2s, restart: a}\n"),
        "t.yaml:5:23: restart of `a`, which is not crashed at 2s"
    );
    assert_eq!(
        error_after_base("faults:\n  - {at: 5s, crash: a}\n  - {at: 2s, restart: a}\n"),
        "t.yaml:6:23: restart of `a`, which is not crashed at 2s"
    );
    assert_eq!(
        error_after_base("faults:\n  - {at: 1s, crash: b}\n  - {at: 3s, crash: b}\n"),
        "t.yaml:6:21: crash of `b`, which is already crashed since 1s"
    );
    assert_eq!(
        error_after_base(
            "faults:\n  - {at: 1s, crash: b}\n  - {at: 2s, restart: b}\n  - {at: 2.5s, restart: b}\n"
        ),
        "t.yaml:7:25: restart of `b`, which is not crashed at 2.5s"
    );
    // Crashing another node, or crashing again after a restart, is fine.
    valid(&format!(
        "{BASE}faults:\n  - {{at: 1s, crash: a}}\n  - {{at: 1s, crash: b}}\n  - {{at: 2s, restart: a}}\n  - {{at: 3s, crash: a}}\n"
    ));
}

/// Goal: nothing is scheduled at or after `duration`, and windows are ordered. Method:
/// faults, point and random workload items, and chaos.
#[test]
fn times_outside_the_run() {
    let cases = [
        ("faults: [{at: 10s, crash: a}]\n", "t.yaml:4:15: `at` 10s is not before `duration` 10s"),
        ("faults: [{at: 1m, heal: all}]\n", "t.yaml:4:15: `at` 1m is not before `duration` 10s"),
        ("workload: [{at: 11s, node: a, delete: k}]\n", "t.yaml:4:17: `at` 11s is not before `duration` 10s"),
        (
            "workload: [{from: 10s, rate: 1/s, keys: 1}]\n",
            "t.yaml:4:19: `from` 10s is not before `duration` 10s",
        ),
        (
            "workload: [{until: 11s, rate: 1/s, keys: 1}]\n",
            "t.yaml:4:20: `until` 11s is after `duration` 10s",
        ),
        (
            "workload: [{from: 5s, until: 2s, rate: 1/s, keys: 1}]\n",
            "t.yaml:4:30: `until` 2s is not after `from` 5s",
        ),
        (
            "workload: [{until: 2s, from: 2s, rate: 1/s, keys: 1}]\n",
            "t.yaml:4:20: `until` 2s is not after `from` 2s",
        ),
        ("chaos: {until: 20s}\n", "t.yaml:4:16: `until` 20s is after `duration` 10s"),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
    let scenario =
        valid(&format!("{BASE}workload: [{{until: 10s, rate: 1/s, keys: 1}}]\nchaos: {{until: 10s}}\n"));
    assert_eq!(scenario.faults_end_ns(), 10 * SECOND_NS);
}

/// Goal: `break` only makes sense on streams. Method: default transport, then stream.
#[test]
fn break_needs_stream() {
    let fault = "faults: [{at: 1s, break: {between: [a, b]}}]\n";
    assert_eq!(error_after_base(fault), "t.yaml:4:19: `break` needs `network.transport: stream`");
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{transport: datagram}}\n")),
        "t.yaml:4:19: `break` needs `network.transport: stream`"
    );
    valid(&format!("{BASE}{fault}network: {{transport: stream}}\n"));
    // An invalid `network` is reported itself, not as a `break` problem.
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{transport: strem}}\n")),
        "t.yaml:5:22: unknown transport `strem`, did you mean `stream`?"
    );
}

/// Goal: with several errors, the one first in the file is reported, across sections.
/// Method: errors in sections listed in an order unlike the parser's.
#[test]
fn first_error_in_document_order() {
    let text = "name: x\nfaults: [{at: 1s, crash: z}]\nexpect: {within: soon}\nnetwork: {loss: 9}\nduration: 10s\nnodes: [a]\n";
    assert_eq!(error(text), "t.yaml:2:26: node `z` is not declared in `nodes`");
    let text = "name: x\nduration: 10s\nclock: {skew: 1}\nnodes: [a, a]\n";
    assert_eq!(error(text), "t.yaml:3:15: expected a duration like 250ms, found \"1\"");
    let text = "name: x\nduration: 10s\nbogus: 1\nnodes: [a, a]\n";
    assert_eq!(
        error(text),
        "t.yaml:3:1: unknown key `bogus`, expected one of `name`, `seed`, `duration`, `nodes`, `topology`, `network`, `clock`, `disk`, `workload`, `faults`, `chaos`, `expect` or `routing`"
    );
}

/// Goal: a missing or unreadable file is an error without a position, never a panic.
/// Method: a path that does not exist, and a directory.
#[test]
fn unreadable_files() {
    let missing = std::env::temp_dir().join("ferry-scenario-test-missing.yaml");
    let rendered = load(&missing).unwrap_err().to_string();
    assert_eq!(
        rendered,
        format!("{}: cannot read: no such file or directory (os error 2)", missing.display())
    );
    let directory = std::env::temp_dir();
    let error = load(&directory).unwrap_err();
    assert_eq!(error.span, None);
    assert!(matches!(error.kind, ErrorKind::Read { .. }), "{error}");
}

/// A file in the temporary directory, removed when dropped.
struct TemporaryFile(std::path::PathBuf);

impl TemporaryFile {
    fn new(name: &str, bytes: &[u8]) -> TemporaryFile {
        let path = std::env::temp_dir().join(format!("ferry-scenario-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("the temporary directory is writable");
        TemporaryFile(path)
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Goal: `load` reads a valid file and labels errors with the path. Method: write, load.
#[test]
fn load_labels_with_path() {
    let file = TemporaryFile::new("ok.yaml", CONTRACT_EXAMPLE.as_bytes());
    assert_eq!(load(&file.0).map(|scenario| scenario.name), Ok("partition-heal".to_owned()));
    let file = TemporaryFile::new("bad.yaml", b"name: x\nduration: ten\nnodes: 1\n");
    let expected = format!("{}:2:11: expected a duration like 250ms, found \"ten\"", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

// ----- hostile input -----

/// Goal: an oversized file is refused before parsing, by `parse` and by `load` (which
/// reads at most one byte past the budget). Method: 4 MiB + 1 of comment.
#[test]
fn hostile_file_too_large() {
    let text = format!("#{}", "x".repeat(FILE_BYTES_MAX as usize));
    assert_eq!(error(&text), "t.yaml:1:1: file is 4194305 bytes, more than the maximum 4194304");
    let file = TemporaryFile::new("large.yaml", text.as_bytes());
    let expected = format!("{}:1:1: file is 4194305 bytes, more than the maximum 4194304", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

/// Goal: deep nesting stops at the depth limit, block or flow. Method: 65 nested block
/// mappings, and 100,000 open brackets, and
/// a million nested block sequences.
#[test]
fn hostile_deep_nesting() {
    let mut text = String::from("name: x\nduration: 1s\nnodes: 1\nexpect:\n");
    for depth in 1..=DEPTH_MAX {
        text.push_str(&format!("{}k:\n", " ".repeat(depth)));
    }
    assert_eq!(error(&text), "t.yaml:68:65: yaml nested deeper than 64 levels");
    let text = format!("name: x\nduration: 1s\nnodes: {}", "[".repeat(100_000));
    assert_eq!(error(&text), "t.yaml:3:263: yaml nested deeper than 64 levels");
    let text = format!("name: x\nduration: 1s\nnodes:\n{}", "- ".repeat(1_000_000));
    assert_eq!(error(&text), "t.yaml:4:127: yaml nested deeper than 64 levels");
}

/// Goal: aliases are refused at the first one, so a "billion laughs" file costs nothing.
/// Method: the classic nine-level bomb.
#[test]
fn hostile_alias_bomb() {
    let mut text = String::from(
        "name: x\nduration: 1s\nnodes: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..9 {
        let previous = level - 1;
        text.push_str(&format!("l{level}: &l{level} [{}]\n", vec![format!("*l{previous}"); 9].join(", ")));
    }
    assert_eq!(error(&text), "t.yaml:5:10: yaml aliases are not supported");
}

/// Goal: long scalars are refused at their start: over the byte limit with their length,
/// far over it (multi-megabyte) as soon as the scanner's lookahead runs out. Method: a
/// 100 KiB name, a 3 MiB name after a comment, a 3 MiB quoted workload key.
#[test]
fn hostile_huge_scalar() {
    let text = format!("name: {}\nduration: 1s\nnodes: 1\n", "x".repeat(100 << 10));
    assert_eq!(error(&text), "t.yaml:1:7: scalar is 102400 bytes, more than the maximum 65536");
    let text = format!("duration: 1s\nnodes: 1\nname: # the name\n  {}\n", "x".repeat(3 << 20));
    assert_eq!(
        error(&text),
        "t.yaml:4:3: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}workload:\n  - {{at: 1s, node: a, delete: \"{}\"}}\n", "x".repeat(3 << 20));
    assert_eq!(
        error(&text),
        "t.yaml:5:5: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
}

/// Goal: a long flow collection where a key could start (top level, after `- `) cannot
/// make the scanner buffer megabytes of tokens. Method: a 4 MiB top-level flow mapping and
/// a 4 MiB flow list in a block sequence; a 1 MiB flow list in value position is fine.
#[test]
fn hostile_long_flow_collections() {
    let text = format!("{{name: x, duration: 1s, nodes: 1, seed: 1{}}}", ", s: 1".repeat(690_000));
    assert_eq!(
        error(&text),
        "t.yaml:1:1: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}faults:\n  - [{}]\n", "1,".repeat(2_000_000));
    assert_eq!(
        error(&text),
        "t.yaml:5:5: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}faults: [{}]\n", "{at: 1s, heal: all},".repeat(10_000));
    assert_eq!(valid(&text).faults.len(), 10_000);
}

/// Goal: a huge node count is refused without allocating the nodes. Method: 10^8 and a
/// count beyond u64.
#[test]
fn hostile_node_count() {
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 100000000\n"),
        "t.yaml:3:8: node count 100000000 is outside 1..=10000"
    );
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 99999999999999999999999\n"),
        "t.yaml:3:8: node count 99999999999999999999999 is outside 1..=10000"
    );
}

/// Goal: the value budget bounds the tree's memory. Method: a flow list with more items
/// than `YAML_VALUES_MAX`, within the size budget.
#[test]
fn hostile_value_count() {
    let text = format!("name: x\nduration: 1s\nnodes: 1\nworkload: [{}]\n", "1,".repeat(YAML_VALUES_MAX));
    // The root mapping, the seven scalars before the list and the list itself count too,
    // so item number `YAML_VALUES_MAX - 8` is one too many; items are two columns apart.
    let column = 12 + 2 * (YAML_VALUES_MAX - 8 - 1);
    assert_eq!(error(&text), format!("t.yaml:4:{column}: more than 250000 yaml values"));
}

/// Goal: tags, extra documents and invalid UTF-8 are refused with a position. Method: one
/// input each.
#[test]
fn hostile_other_constructs() {
    assert_eq!(
        error("name: !!str x\nduration: 1s\nnodes: 1\n"),
        "t.yaml:1:7: yaml tags are not supported, found `!!str`"
    );
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 1\n---\nname: y\n"),
        "t.yaml:4:1: expected one yaml document, found a second one"
    );
    assert_eq!(error(""), "t.yaml:1:1: empty file: expected a mapping with `name`, `duration` and `nodes`");
    let file = TemporaryFile::new("latin1.yaml", b"name: x\nduration: 1s\nnodes: [caf\xe9]\n");
    let expected = format!("{}:3:12: file is not valid utf-8", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

/// Goal: arbitrary bytes never panic. Method: every prefix of the contract example, and
/// the example with every fifth byte in turn replaced by YAML punctuation.
#[test]
fn no_panic_on_mangled_input() {
    for end in 0..=CONTRACT_EXAMPLE.len() {
        if CONTRACT_EXAMPLE.is_char_boundary(end) {
            let _ = parse("t.yaml", &CONTRACT_EXAMPLE[..end]);
        }
    }
    let bytes = CONTRACT_EXAMPLE.as_bytes();
    for index in (0..bytes.len()).step_by(5) {
        for replacement in [b'[', b'{', b':', b'-', b'*', b'"', b'\n'] {
            let mut mangled = bytes.to_vec();
            mangled[index] = replacement;
            if let Ok(text) = std::str::from_utf8(&mangled) {
                let _ = parse("t.yaml", text);
            }
        }
    }
}
