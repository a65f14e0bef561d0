//! Goal: a node that alters the entries it relays is caught, in simulation, by the real
//! protocol (PROTOCOL.md 8.13): its neighbours refuse every altered entry and name it, no
//! store ever holds an altered value, and the cluster still converges with nothing
//! acknowledged lost, through the paths that do not cross the liar.
//! Method: a ring of four, a - b - c - d - a, where b is a Byzantine relay
//! (`PlantedBug::AlterRelayed`: every push of b that carries another origin's entry goes
//! out with those entries turned into puts of `ALTERED_VALUE`, their signatures untouched,
//! encrypted under b's sessions as usual). Every node writes. The same scenario without the
//! liar is the control: it passes too, and refuses nothing. Several seeds, so the check does
//! not rest on one schedule.

use ferry::run::{self, Report};
use ferry::scenario::{self, Scenario};
use ferry_simulator::Trace;
use ferry_simulator::ferry::{ALTERED_VALUE, PlantedBug};
use ferry_simulator::trace::SharedBuffer;

const SCENARIO: &str = "\
name: byzantine-relay
duration: 30s
nodes: [a, b, c, d]
topology: ring
network:
  latency: 1ms..10ms
  loss: 0.02
workload:
  - {from: 0s, until: 10s, rate: 20/s, keys: 30}
faults:
  - {at: 3s, crash: d}
  - {at: 5s, restart: d}
expect:
  converged: true
  within: 20s
  no_data_loss: true
";

/// b, the second node.
const LIAR: u32 = 1;

fn scenario() -> Scenario {
    scenario::parse("byzantine-relay.yaml", SCENARIO).expect("the scenario is valid")
}

fn run(seed: u64, bug: Option<PlantedBug>) -> (Report, String) {
    let buffer = SharedBuffer::default();
    let options = run::Options { planted_bug: bug, dump_state: true, ..run::Options::default() };
    let report = run::run_with(&scenario(), seed, Trace::new(Some(Box::new(buffer.clone()))), options);
    (report, buffer.text())
}

/// Lines of `trace` where `node` refused entries from peer `peer` for not verifying.
fn refusals(trace: &str, node: &str, peer: &str) -> usize {
    let needle = format!("from peer \"{peer}\": its signature does not verify");
    trace.lines().filter(|line| line.contains(&format!("] {node} ")) && line.contains(&needle)).count()
}

#[test]
fn a_relay_that_alters_entries_is_refused_and_routed_around() {
    let altered = String::from_utf8_lossy(ALTERED_VALUE).into_owned();
    for seed in 0..4 {
        let (report, trace) = run(seed, Some(PlantedBug::AlterRelayed { node: LIAR }));
        assert!(report.passed(), "seed {seed}: {:?}", report.failed_checks().collect::<Vec<_>>());
        assert!(report.writes_acked > 100, "seed {seed}: {} writes", report.writes_acked);
        // The fault fired, and was caught on both sides of the liar.
        let (at_a, at_c) = (refusals(&trace, "a", "b"), refusals(&trace, "c", "b"));
        assert!(at_a > 0 && at_c > 0, "seed {seed}: a refused {at_a} times, c {at_c}");
        // Nothing altered is held anywhere: not by the neighbours, not relayed on to d.
        let state = report.state.as_ref().expect("the state was dumped").to_string();
        assert!(!state.contains(&altered) && !state.contains("altered by a byzantine"), "seed {seed}");

        let (control, control_trace) = run(seed, None);
        assert!(control.passed(), "seed {seed} without the liar: {:?}", control.checks);
        assert!(
            !control_trace.contains("its signature does not verify"),
            "seed {seed}: an honest run refuses nothing"
        );
    }
}
