//! The simulator as CI runs it, through `sim/run` (which builds it with
//! `--cfg madsim`, in release, in `<target>/sim`): the checkers' own unit
//! tests, a fixed seed set that must pass, a determinism check over many
//! seeds, and, with the `canaries` feature, every canary caught within the
//! CI seed budget.
//!
//! A failure prints the simulator's report: the seed, the finding, and
//! the command that replays it with its event trace.
#![cfg(not(madsim))]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The seeds CI runs: mixed 3- and 5-member clusters, each run about 30
/// simulated seconds. `sim/run --seeds 0..10000` runs more.
const CI_SEEDS: &str = "0..500";
/// Seeds run twice each, whose traces must be identical.
const DETERMINISM_SEEDS: &str = "0..60";
/// Each canary must be caught within this many seeds: the CI budget.
#[cfg(feature = "canaries")]
const CANARY_BUDGET_SEEDS: u64 = 500;

/// The tests share one build directory and two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `<target>/sim`, beside the workspace's own profiles.
fn sim_target() -> PathBuf {
    // <target>/<profile>/deps/<this test> -> <target>/sim
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("sim")))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/sim")))
}

/// Runs `sim/run` with `args`; returns whether it passed, and its output.
fn sim_run(args: &[&str]) -> (bool, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let output = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/run"))
        .args(args)
        .env("SIM_TARGET_DIR", sim_target())
        // One build serves every test: with no canary chosen, the canary
        // checks compiled in are all off.
        .env("SIM_FEATURES", "canaries")
        .output()
        .expect("run sim/run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_ci_seed_set_passes() {
    let (passed, output) = sim_run(&["--seeds", CI_SEEDS]);
    assert!(passed, "the simulator found failures:\n{output}");
    eprintln!("{output}");
}

#[test]
fn the_checkers_pass_their_own_tests() {
    let (passed, output) = sim_run(&["--self-test"]);
    assert!(passed, "a checker's unit test failed:\n{output}");
    assert!(
        output.contains("test result: ok"),
        "no tests ran:\n{output}"
    );
}

#[test]
fn a_seed_replays_exactly() {
    let (passed, output) = sim_run(&["--seeds", DETERMINISM_SEEDS, "--determinism"]);
    assert!(passed, "runs differed or failed:\n{output}");
    eprintln!("{output}");
}

/// The lowest failing seed in the report, with its findings (batches
/// run in parallel, so failures are not printed in seed order).
#[cfg(feature = "canaries")]
fn first_failure(output: &str) -> Option<(u64, Vec<String>)> {
    let lines: Vec<&str> = output.lines().collect();
    let mut failures = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("FAILED seed ") else {
            continue;
        };
        let Some(seed) = rest.split(':').next().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let findings = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.starts_with("run:") && !l.starts_with("replay:"))
            .collect();
        failures.push((seed, findings));
    }
    failures.into_iter().min_by_key(|(seed, _)| *seed)
}

/// A deliberately broken variant must fail a seed within the budget, by
/// one of the simulator's own checkers (not only by a member's panic).
#[cfg(feature = "canaries")]
fn assert_caught(canary: &str) {
    let budget = format!("0..{CANARY_BUDGET_SEEDS}");
    let (passed, output) = sim_run(&["--canary", canary, "--seeds", &budget, "--stop-on-failure"]);
    assert!(
        !passed,
        "{canary} was not caught in seeds {budget}:\n{output}"
    );
    let Some((seed, findings)) = first_failure(&output) else {
        panic!("{canary}: no failing seed in the report:\n{output}");
    };
    assert!(
        findings.iter().any(|f| !f.starts_with("panic:")),
        "{canary} at seed {seed} was caught only by a panic:\n{output}"
    );
    eprintln!("{canary} caught at seed {seed}: {}", findings[0]);
}

/// Replies and Accepted messages that leave before their fsync: a power
/// failure loses what a quorum was counted with.
#[cfg(feature = "canaries")]
#[test]
fn acking_before_fsync_is_caught() {
    assert_caught("AckBeforeFsync");
}

/// A lease taken on one member only: the members' job states part ways.
#[cfg(feature = "canaries")]
#[test]
fn a_lease_not_replicated_is_caught() {
    assert_caught("LeaseNotReplicated");
}

/// A new leader that skips re-proposing accepted values can overwrite a
/// chosen one ("Paxos Made Simple", §2.2 (b)).
#[cfg(feature = "canaries")]
#[test]
fn a_leader_ignoring_promised_values_is_caught() {
    assert_caught("IgnorePromisedValues");
}
