//! The `synod` command: `synod node`, `synod dev`, `synod status`, `synod bench`.

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    use synod::cli::{Cli, CliCommand};

    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A member runs on one thread (fsyncs still go to blocking threads):
    // its event loop, connections and peer links hand work to each other
    // all the time, and across threads every handoff is a futex wakeup and
    // a context switch, which cost more than the work itself at low load
    // (measured: half the CPU per ADDJOB and p50 0.68 -> 0.44 ms at one in
    // flight, the same throughput at 256). The load generator runs on one
    // thread too: it shares the machine with the members it measures.
    let mut builder = match cli.command {
        CliCommand::Bench(_) | CliCommand::Node(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("synod: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            CliCommand::Node(args) => synod::server::run_member(args).await,
            CliCommand::Dev(args) => synod::dev::run(args).await,
            CliCommand::Bench(args) => synod::bench::run(args).await,
            CliCommand::Status(args) => {
                let down = synod::status::run(&args.addrs).await;
                i32::from(down > 0)
            }
        }
    });
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Under simulation the members are started by the simulator, not by this
/// binary.
#[cfg(madsim)]
fn main() {
    eprintln!("synod: built for simulation (--cfg madsim); run the simulator instead");
}
