//! `cargo xtask`: the project's developer commands (setup, test, run, bench, fuzz, dist); CLI and
//! dispatch.

mod bench;
mod dist;
mod fuzz;
mod run;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Developer commands of the profiler workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building the eBPF side needs (nightly rust-src and a matching bpf-linker) and
    /// the real clients the end-to-end tests drive (bpftool, Prometheus, Go, tmux, Chromium,
    /// perf, stress-ng, redis-server). `run` and `dist` install only the former, `test` both.
    Setup {
        /// Also install the benchmark peers and workloads (bpftrace, libbpf-tools, redis-tools,
        /// GNU time).
        #[arg(long)]
        bench: bool,
    },
    /// Build the profiler, run the unit tests, then the end-to-end tests (as root, via sudo).
    Test {
        /// Passed to the end-to-end test executables (a filter, --nocapture, ...).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build the profiler and run it as root with these arguments.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure the profiler's overhead: every sub-bench, or the one named, then a table of
    /// medians and ratios, written to bench/results.md.
    Bench(bench::Args),
    /// Run the cargo-fuzz targets in fuzz/ (nightly; installs cargo-fuzz when missing).
    Fuzz(fuzz::Args),
    /// Build the Debian package (target/dist/profiler_<version>_<arch>.deb): the binary, man
    /// pages, shell completions, the systemd unit and the docs.
    Dist(dist::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Setup { bench } => setup::run(if bench {
            setup::Needs::Bench
        } else {
            setup::Needs::Test
        }),
        Command::Test { args } => test::run(&args),
        Command::Run { args } => run::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Dist(args) => dist::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` keeps the cause chain but, unlike returning the error from main, no
            // backtrace: RUST_BACKTRACE is often set for the tests and would bury the message.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
