//! Goal: the adversarial fault kinds parse into exactly what they say, and each bad value
//! is refused at its own position. Method: one valid file with every kind, then one case
//! per error.

use super::super::{ChaosReplay, ChaosWindow, DiskFaultKind, FaultKind, warnings};
use super::{BASE, MILLISECOND_NS, SECOND_NS, error_after_base, range_ns, valid};

#[test]
fn every_adversarial_kind_parses() {
    let scenario = valid(&format!(
        "{BASE}network: {{bandwidth: 1mbps, queue: 8}}
faults:
  - {{at: 1s, for: 2s, corrupt: {{between: [a, b], probability: 0.25}}}}
  - {{at: 2s, replay: {{between: [b, c], count: 7}}}}
  - {{at: 2s, replay: {{between: [b, c]}}}}
  - {{from: 3s, until: 4s, clog: {{from: a, to: c}}}}
  - {{at: 3s, for: 1s, clog: {{between: [b, a]}}}}
  - {{at: 4s, for: 500ms, pause: c}}
  - {{at: 5s, disk_fault: {{node: a, kind: fsync_fail}}}}
  - {{at: 5s, for: 1s, disk_fault: {{node: b, kind: full}}}}
  - {{at: 6s, disk_fault: {{node: c, kind: misdirected}}}}
  - {{at: 7s, link: {{between: [a, b], bandwidth: 64kbps, queue: 3}}}}
chaos:
  until: 8s
  corrupt: {{every: 2s, duration: 1s}}
  replay: {{every: 1s, count: 4}}
  clog: {{every: 3s, duration: 100ms..1s}}
  pause: {{every: 3s, duration: 200ms}}
  disk_fault: {{every: 4s, duration: 1s}}
"
    ));
    assert_eq!(scenario.network.queue_messages_max, Some(8));
    let kinds: Vec<&FaultKind> = scenario.faults.iter().map(|fault| &fault.kind).collect();
    assert_eq!(kinds[0], &FaultKind::Corrupt { between: [0, 1], probability: 0.25 });
    assert_eq!(scenario.faults[0].until_ns, Some(3 * SECOND_NS));
    assert_eq!(kinds[1], &FaultKind::Replay { between: [1, 2], count: 7 });
    assert_eq!(kinds[2], &FaultKind::Replay { between: [1, 2], count: 1 });
    assert_eq!(kinds[3], &FaultKind::Clog { from: 0, to: 2, both: false });
    assert_eq!(kinds[4], &FaultKind::Clog { from: 1, to: 0, both: true });
    assert_eq!(kinds[5], &FaultKind::Pause { node: 2 });
    assert_eq!(scenario.faults[5].until_ns, Some(4 * SECOND_NS + 500 * MILLISECOND_NS));
    assert_eq!(kinds[6], &FaultKind::DiskFault { node: 0, kind: DiskFaultKind::FsyncFail });
    assert_eq!(kinds[7], &FaultKind::DiskFault { node: 1, kind: DiskFaultKind::Full });
    assert_eq!(kinds[8], &FaultKind::DiskFault { node: 2, kind: DiskFaultKind::Misdirected });
    let FaultKind::Link(link) = kinds[9] else { panic!("a link fault") };
    assert_eq!((link.bandwidth_bits_per_second, link.queue_messages_max), (Some(64_000), Some(3)));
    let chaos = scenario.chaos.expect("chaos");
    assert_eq!(
        chaos.corrupt,
        Some(ChaosWindow { every_ns: 2 * SECOND_NS, duration_ns: range_ns(SECOND_NS, SECOND_NS) })
    );
    assert_eq!(chaos.replay, Some(ChaosReplay { every_ns: SECOND_NS, count: 4 }));
    assert_eq!(chaos.clog.map(|clog| clog.duration_ns), Some(range_ns(100 * MILLISECOND_NS, SECOND_NS)));
    assert!(chaos.pause.is_some() && chaos.disk_fault.is_some());
}

#[test]
fn bad_adversarial_values_are_refused_where_written() {
    let cases = [
        (
            "faults:\n  - {at: 1s, corrupt: {between: [a, b], probability: 1.5}}\n",
            "t.yaml:5:54: `probability` must be a probability in [0, 1], found 1.5",
        ),
        (
            "faults:\n  - {at: 1s, corrupt: {between: [a, b]}}\n",
            "t.yaml:5:23: missing required key `probability`",
        ),
        (
            "faults:\n  - {at: 1s, replay: {between: [a, b], count: 0}}\n",
            "t.yaml:5:47: `count` 0 is outside 1..=1000",
        ),
        (
            "faults:\n  - {at: 1s, replay: {between: [a, a]}}\n",
            "t.yaml:5:36: node `a` cannot be linked to itself",
        ),
        (
            "faults:\n  - {at: 1s, clog: {from: a, to: b}}\n",
            "t.yaml:5:5: a `clog` fault needs an end: write `for: 2s` or `from`/`until`; what it holds is handed \
             over then",
        ),
        (
            "faults:\n  - {at: 1s, for: 1s, clog: {between: [a, b], to: c}}\n",
            "t.yaml:5:47: clog has both `between` and `to`",
        ),
        (
            "faults:\n  - {at: 1s, pause: a}\n",
            "t.yaml:5:5: a `pause` fault needs an end: write `for: 2s` or `from`/`until`; what it holds is handed \
             over then",
        ),
        (
            "faults:\n  - {at: 1s, for: 1s, replay: {between: [a, b]}}\n",
            "t.yaml:5:14: a `replay` fault cannot last: `for` applies to partition, cut, link, isolate, crash, \
             clock_jump, corrupt, clog, pause and disk_fault",
        ),
        (
            "faults:\n  - {at: 1s, disk_fault: {node: a, kind: fsync_failed}}\n",
            "t.yaml:5:42: unknown disk fault kind `fsync_failed`, did you mean `fsync_fail`?",
        ),
        ("faults:\n  - {at: 1s, disk_fault: {node: a}}\n", "t.yaml:5:26: missing required key `kind`"),
        (
            "faults:\n  - {at: 1s, link: {between: [a, b], queue: 0}}\n",
            "t.yaml:5:45: `queue` 0 is outside 1..=65536",
        ),
        ("network: {queue: many}\n", "t.yaml:4:18: expected a whole number like 7, found \"many\""),
        ("chaos: {until: 5s, replay: {every: 1s}}\n", "t.yaml:4:28: missing required key `count`"),
    ];
    let mut wrong = Vec::new();
    for (rest, expected) in cases {
        let actual = error_after_base(rest);
        if actual != expected {
            wrong.push(format!("{rest:?}\n  actual:   {actual}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn adversarial_faults_that_cannot_act_are_warned_about() {
    let scenario = valid(&format!(
        "{BASE}topology: line
network: {{queue: 4}}
faults:
  - {{at: 1s, for: 1s, corrupt: {{between: [a, c], probability: 0.5}}}}
  - {{at: 2s, for: 1s, corrupt: {{between: [a, b], probability: 0}}}}
  - {{at: 3s, for: 1s, clog: {{from: c, to: a}}}}
"
    ));
    let messages: Vec<String> = warnings(&scenario).into_iter().map(|warning| warning.message).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("`queue` bounds"));
    assert_eq!(
        messages[1],
        "the topology has no link between `a` and `c`: this `corrupt` fault has no effect"
    );
    assert_eq!(messages[2], "this `corrupt` fault has probability 0: it damages nothing");
    assert_eq!(messages[3], "the topology has no link between `c` and `a`: this `clog` fault has no effect");
}
