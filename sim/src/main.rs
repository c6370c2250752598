//! The simulator's command line. `sim/run` builds it with
//! `RUSTFLAGS="--cfg madsim"` and runs it over batches of seeds:
//!
//! ```text
//! synod-sim --seeds 0..100 [--members 3|5] [--determinism] [--stop-on-failure] [--verbose]
//! synod-sim --seed 17 [--members 3|5] [--trace FILE]
//! ```
//!
//! With `--features canaries`, `--canary NAME` runs a deliberately broken
//! variant: AckBeforeFsync, LeaseNotReplicated, IgnorePromisedValues,
//! AcceptBelowPromise or SendBeforePersist. `SIM_LOG=synod=debug` prints
//! the members' own logs (best with one seed).

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "synod-sim runs only in a madsim build; use the script: sim/run --seeds 0..1000 \
         (or sim/run --seed N --trace FILE)"
    );
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use std::ops::Range;
    use std::time::Duration;

    use synod_sim::options::Options;
    use synod_sim::scenario::{self, Canary, Report};

    /// What the command line asked for.
    struct Args {
        seeds: Range<u64>,
        /// A single seed to replay (prints everything about it).
        replay: bool,
        members: Option<usize>,
        trace: Option<String>,
        canary: Option<String>,
        determinism: bool,
        stop_on_failure: bool,
        verbose: bool,
    }

    fn usage() -> ! {
        eprintln!(
            "usage: synod-sim --seeds A..B [--members 3|5] [--determinism] [--stop-on-failure] [--verbose]\n\
             \x20      synod-sim --seed N [--members 3|5] [--trace FILE]\n\
             \x20      (either with --canary NAME in a build with --features canaries)"
        );
        std::process::exit(2)
    }

    fn parse_args() -> Args {
        let mut args = Args {
            seeds: 0..0,
            replay: false,
            members: None,
            trace: None,
            canary: None,
            determinism: false,
            stop_on_failure: false,
            verbose: false,
        };
        let mut given = false;
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            let mut value = || words.next().unwrap_or_else(|| usage());
            match word.as_str() {
                "--seeds" => {
                    let range = value();
                    let (a, b) = range.split_once("..").unwrap_or_else(|| usage());
                    let a: u64 = a.parse().unwrap_or_else(|_| usage());
                    let b: u64 = b.parse().unwrap_or_else(|_| usage());
                    args.seeds = a..b;
                    given = true;
                }
                "--seed" => {
                    let seed: u64 = value().parse().unwrap_or_else(|_| usage());
                    args.seeds = seed..seed + 1;
                    args.replay = true;
                    given = true;
                }
                "--members" => {
                    let members = value().parse().unwrap_or_else(|_| usage());
                    if members != 3 && members != 5 {
                        usage();
                    }
                    args.members = Some(members);
                }
                "--trace" => args.trace = Some(value()),
                "--canary" => args.canary = Some(value()),
                "--determinism" => args.determinism = true,
                "--stop-on-failure" => args.stop_on_failure = true,
                "--verbose" | "-v" => args.verbose = true,
                _ => usage(),
            }
        }
        if !given || (args.trace.is_some() && !args.replay) {
            usage();
        }
        args
    }

    #[cfg(feature = "canaries")]
    fn canary(name: &str) -> Option<Canary> {
        use consensus::Canary as Protocol;
        use synod::hooks::NodeCanary;
        Some(match name {
            "AckBeforeFsync" => NodeCanary::AckBeforeFsync,
            "LeaseNotReplicated" => NodeCanary::LeaseNotReplicated,
            "IgnorePromisedValues" => NodeCanary::Consensus(Protocol::IgnorePromisedValues),
            "AcceptBelowPromise" => NodeCanary::Consensus(Protocol::AcceptBelowPromise),
            "SendBeforePersist" => NodeCanary::Consensus(Protocol::SendBeforePersist),
            _ => return None,
        })
    }

    #[cfg(not(feature = "canaries"))]
    fn canary(_name: &str) -> Option<Canary> {
        None
    }

    /// Runs one seed on a fresh thread (see [`scenario::run`]).
    fn run_seed(args: &Args, seed: u64, trace: Option<String>) -> Report {
        let mut options = Options::from_seed(seed, args.members);
        options.canary = args.canary.clone();
        let canary = args.canary.as_deref().and_then(canary);
        std::thread::Builder::new()
            .name(format!("seed-{seed}"))
            .stack_size(64 << 20)
            .spawn(move || scenario::run(options, canary, trace.as_deref()))
            .expect("spawn a thread")
            .join()
            .expect("a run reports its own panics")
    }

    /// The command that replays `seed` with its event trace.
    fn replay_command(args: &Args, seed: u64) -> String {
        let mut command = "sim/run".to_string();
        if let Some(canary) = &args.canary {
            command.push_str(&format!(" --canary {canary}"));
        }
        if let Some(members) = args.members {
            command.push_str(&format!(" --members {members}"));
        }
        command.push_str(&format!(" --seed {seed} --trace sim-seed-{seed}.jsonl"));
        command
    }

    fn summary_line(report: &Report, wall: Duration) -> String {
        let s = &report.stats;
        let q = &report.total_queue;
        format!(
            "{} members, trace {:016x} ({} events), {} ops, {} jobs acknowledged, {} delivered \
             ({} more than once, {} recovered), {} leadership changes, {} kills, {} partitions, \
             {} pauses, {} clock jumps, {} snapshots installed, frames lost/delayed {}/{}, \
             {} slots, {} requests applied twice, {} slots stamped behind log time; \
             {:.1} s simulated in {:.2} s",
            report.options.members,
            report.trace_hash,
            report.events,
            s.ops,
            q.acknowledged,
            q.delivered,
            q.duplicated,
            q.recovered,
            s.leadership_changes,
            s.kills,
            s.partitions,
            s.pauses,
            s.clock_jumps,
            s.installed_snapshots,
            report.frames_dropped_delayed.0,
            report.frames_dropped_delayed.1,
            s.max_slot,
            report.repeated_requests,
            s.stamps_behind_log_time,
            report.simulated.as_secs_f64(),
            wall.as_secs_f64(),
        )
    }

    /// Findings printed per failed seed (the trace has them all).
    const MAX_FINDINGS_SHOWN: usize = 5;

    pub fn main() -> i32 {
        let args = parse_args();
        // The members log through `tracing`; a replay can show it, stamped
        // with simulated time.
        if let Ok(filter) = std::env::var("SIM_LOG") {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
        }
        if let Some(name) = &args.canary {
            if canary(name).is_none() {
                eprintln!(
                    "unknown canary {name}, or a build without --features canaries \
                     (sim/run adds it when given --canary)"
                );
                return 2;
            }
        }
        let mut passed = 0u64;
        let mut failed = 0u64;
        let mut simulated = Duration::ZERO;
        // Wall time is measured here, outside every simulation, only to
        // report the simulator's speed.
        let batch_start = std::time::Instant::now();
        for seed in args.seeds.clone() {
            let started = std::time::Instant::now();
            let trace = if args.replay {
                args.trace.clone()
            } else {
                None
            };
            let mut report = run_seed(&args, seed, trace);
            if args.determinism {
                let again = run_seed(&args, seed, None);
                let same = again.trace_hash == report.trace_hash
                    && again.events == report.events
                    && again.findings == report.findings;
                if !same {
                    report.findings.push(synod_sim::world::Finding {
                        checker: "determinism",
                        detail: format!(
                            "two runs gave traces {:016x} ({} events) and {:016x} ({} events)",
                            report.trace_hash, report.events, again.trace_hash, again.events
                        ),
                    });
                }
            }
            let wall = started.elapsed();
            simulated += report.simulated;
            if args.replay {
                println!("seed {seed}: {}", report.options);
            }
            if report.passed() {
                passed += 1;
                if args.verbose || args.replay {
                    println!("ok     seed {seed}: {}", summary_line(&report, wall));
                }
                if args.verbose && !args.replay {
                    println!("       options: {}", report.options);
                }
            } else {
                failed += 1;
                println!("FAILED seed {seed}: {}", report.options);
                for finding in report.findings.iter().take(MAX_FINDINGS_SHOWN) {
                    println!("  {}: {}", finding.checker, finding.detail);
                }
                if report.findings.len() > MAX_FINDINGS_SHOWN {
                    println!("  ... {} findings in all", report.findings.len());
                }
                println!("  run: {}", summary_line(&report, wall));
                if args.replay {
                    if let Some(path) = &args.trace {
                        println!("  event trace written to {path}");
                    }
                } else {
                    println!("  replay: {}", replay_command(&args, seed));
                }
                if args.stop_on_failure {
                    break;
                }
            }
        }
        println!(
            "summary: seeds={} passed={passed} failed={failed} simulated_ms={} wall_ms={}",
            passed + failed,
            simulated.as_millis(),
            batch_start.elapsed().as_millis()
        );
        if failed > 0 { 1 } else { 0 }
    }
}
