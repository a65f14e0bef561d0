//! One test per error class, each asserting the exact rendered message and position.

use super::super::*;
use super::{BASE, SECOND_NS, error, error_after_base, valid};

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
        "t.yaml:4:22: unknown transport `tcp`, expected one of `datagram`, `stream` or `quic`"
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
            "t.yaml:4:10: fault needs one of `partition`, `cut`, `link`, `crash`, `restart`, `isolate`, `clock_jump`, \
             `heal`, `break`, `corrupt`, `replay`, `clog`, `pause` or `disk_fault`",
        ),
        (
            "workload: [{at: 1s, node: a}]\n",
            "t.yaml:4:12: workload item needs one of `put`, `delete`, `ping` or `rate`",
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

/// Goal: `break` only makes sense on stream links. Method: default transport, then stream,
/// then one stream link in `network.links` (before or after the fault in the file).
#[test]
fn break_needs_stream() {
    let fault = "faults: [{at: 1s, break: {between: [a, b]}}]\n";
    let needs = "`break` needs a stream link: `network.transport: stream`, or `transport: stream` for this pair \
                 in `network.links`";
    assert_eq!(error_after_base(fault), format!("t.yaml:4:19: {needs}"));
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{transport: datagram}}\n")),
        format!("t.yaml:4:19: {needs}")
    );
    valid(&format!("{BASE}{fault}network: {{transport: stream}}\n"));
    // One stream link in a datagram run, named either way round.
    valid(&format!("{BASE}{fault}network: {{links: [{{between: [b, a], transport: stream}}]}}\n"));
    valid(&format!("{BASE}network: {{links: [{{between: [a, b], transport: stream}}]}}\n{fault}"));
    // A stream run whose link a-b is QUIC: not a stream.
    assert_eq!(
        error(&format!(
            "{BASE}{fault}network: {{transport: stream, links: [{{between: [a, b], transport: quic}}]}}\n"
        )),
        format!("t.yaml:4:19: {needs}")
    );
    // Another pair's stream does not make this one a stream.
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{links: [{{between: [b, c], transport: stream}}]}}\n")),
        format!("t.yaml:4:19: {needs}")
    );
    // An invalid `network` is reported itself, not as a `break` problem.
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{transport: strem}}\n")),
        "t.yaml:5:22: unknown transport `strem`, did you mean `stream`?"
    );
    // So is an invalid `network.links`, though the `break` comes first in the file.
    assert_eq!(
        error(&format!("{BASE}{fault}network: {{links: [{{between: [a, b], transport: strem}}]}}\n")),
        "t.yaml:5:48: unknown transport `strem`, did you mean `stream`?"
    );
}

/// Goal: every mistake in `network.links` is refused at its position. Method: one per class.
#[test]
fn network_links_errors() {
    let cases = [
        ("network: {links: [{between: [a, b]}]}\n", "t.yaml:4:19: missing required key `transport`"),
        ("network: {links: [{transport: quic}]}\n", "t.yaml:4:19: missing required key `between`"),
        (
            "network: {links: [{between: [a, b], transport: tcp}]}\n",
            "t.yaml:4:48: unknown transport `tcp`, expected one of `datagram`, `stream` or `quic`",
        ),
        (
            "network: {links: [{between: [a, z], transport: quic}]}\n",
            "t.yaml:4:33: node `z` is not declared in `nodes`",
        ),
        (
            "network: {links: [{between: [a, a], transport: quic}]}\n",
            "t.yaml:4:33: node `a` cannot be linked to itself",
        ),
        (
            "network: {links: [{between: [a, b], transport: quic}, {between: [b, a], transport: stream}]}\n",
            "t.yaml:4:65: the link between `b` and `a` is listed twice in `network.links`",
        ),
        (
            "network: {links: [{between: [a, b], transport: quic, loss: 0.1}]}\n",
            "t.yaml:4:54: unknown key `loss`, expected `between` or `transport`",
        ),
        (
            "network: {links: {between: [a, b]}}\n",
            "t.yaml:4:18: expected a list of links like [{between: [a, b], transport: quic}], found a mapping",
        ),
    ];
    for (rest, expected) in cases {
        assert_eq!(error_after_base(rest), expected, "{rest}");
    }
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

/// Goal: every invalid value of the biting workload keys is refused with its position.
/// Method: one bad value per case, each on line 5.
#[test]
fn random_workload_that_bites_errors() {
    let item = |keys: &str| error_after_base(&format!("workload:\n  - {{rate: 1/s, keys: 1, {keys}}}\n"));
    let cases = [
        "deletes: 1.5",
        "deletes: often",
        "value_bytes: 10..5",
        "value_bytes: 0..65537",
        "value_bytes: a..b",
        "key_bytes: 0",
        "key_bytes: 4097",
        "hot_keys: 3",
        "hot_keys: {keys: 0, share: 0.5}",
        "hot_keys: {keys: 2}",
        "hot_keys: {share: 0.5}",
        "hot_keys: {keys: 2, share: 2}",
        "hot_keys: {keys: 2, share: 0.5, writers: 0}",
        "hot_keys: {keys: 2, share: 0.5, writers: 65}",
        "hot_keys: {keys: 2, share: 0.5, writer: 3}",
        "burst: {every: 2s}",
        "burst: {count: 5}",
        "burst: {every: 0s, count: 5}",
        "burst: {every: 1s, count: 0}",
        "burst: {every: 1s, count: 10001}",
        "burst: {every: 1s, count: 5, size: 3}",
    ];
    let rendered: Vec<String> = cases.iter().map(|keys| item(keys)).collect();
    let expected = [
        "t.yaml:5:35: `deletes` must be a probability in [0, 1], found 1.5",
        "t.yaml:5:35: expected a probability like 0.05, found \"often\"",
        "t.yaml:5:39: range 10..5 is inverted: its start is after its end",
        "t.yaml:5:39: `value_bytes` 65537 is outside 0..=65536",
        "t.yaml:5:39: expected a whole number or a range like 0..65536, found \"a..b\"",
        "t.yaml:5:37: `key_bytes` 0 is outside 1..=4096",
        "t.yaml:5:37: `key_bytes` 4097 is outside 1..=4096",
        "t.yaml:5:36: expected a mapping like {keys: 2, share: 0.3, writers: 3}, found \"3\"",
        "t.yaml:5:43: `keys` 0 is outside 1..=1000",
        "t.yaml:5:36: missing required key `share`",
        "t.yaml:5:36: missing required key `keys`",
        "t.yaml:5:53: `share` must be a probability in [0, 1], found 2",
        "t.yaml:5:67: `writers` 0 is outside 1..=64",
        "t.yaml:5:67: `writers` 65 is outside 1..=64",
        "t.yaml:5:58: unknown key `writer`, did you mean `writers`?",
        "t.yaml:5:33: missing required key `count`",
        "t.yaml:5:33: missing required key `every`",
        "t.yaml:5:41: `every` 0s is shorter than the minimum 1ms",
        "t.yaml:5:52: `count` 0 is outside 1..=10000",
        "t.yaml:5:52: `count` 10001 is outside 1..=10000",
        "t.yaml:5:55: unknown key `size`, expected `every` or `count`",
    ];
    assert_eq!(rendered, expected);
}
