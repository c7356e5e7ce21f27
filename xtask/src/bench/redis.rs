//! `cargo xtask bench redis`: a real messaging workload, `redis-benchmark` against a private
//! `redis-server`, untraced and under `profiler record`: its always-on tier, an incident's exact
//! probes, its defaults as shipped, and the always-exact signals of earlier releases. The
//! figure is the throughput redis-benchmark reports; the goals a loss of at most 2 % between
//! incidents and over a long run, and of at most 10 % while an incident runs.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    Context, SubBench, free_port, missing_tool, prepare, print_header_line,
    results::{Goal, Row, set_goal},
    run_rounds, tracer, under_record,
};
use crate::util;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each round runs every condition once.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Requests of each test (SET, then GET) per redis-benchmark run.
    #[arg(long, default_value_t = 150_000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Parallel client connections (redis-benchmark's default).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
}

impl SubBench for Options {
    const NAME: &'static str = "redis";
    const WORKLOADS: bool = false;

    fn quick() -> Self {
        Self {
            runs: 1,
            requests: 5_000,
            clients: 50,
        }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self)
    }
}

/// `profiler record` at its defaults costs redis at most 2 % of its throughput, between incidents
/// and over a long run; at most 10 % while an incident's exact probes are attached.
const GOAL: Goal = Goal::MaxLoss(0.02);
const INCIDENT_GOAL: Goal = Goal::MaxLoss(0.10);
/// record's defaults: an incident lasts this long, and the next may start this long after.
const INCIDENT: f64 = 10.0;
const COOLDOWN: f64 = 300.0;
/// Two one-second ticks over the threshold set an incident off.
const TRIGGER: f64 = 2.0;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys SET and GET pick from at random, so the keyspace is not a single hot key.
const KEYSPACE: &str = "100000";

#[derive(Debug, Clone, Copy)]
enum Condition {
    Untraced,
    /// `record` with these arguments besides its defaults.
    Record(&'static [&'static str]),
}

/// The always-on tier alone; an incident attached from the second tick to the end (any
/// process a twentieth of a core inside syscalls sets it off); the defaults as shipped, a fresh
/// recorder per run, so redis, busy inside syscalls, sets an incident off ~2 s into each run
/// (the worst case: a recorder that just started); and the always-exact signals of earlier
/// releases (a syscall hook on each syscall, the socket tracepoints on each send and receive).
const CONDITIONS: [(Condition, &str); 5] = [
    (Condition::Untraced, "untraced"),
    (Condition::Record(&["--no-escalate"]), "record-always-on"),
    (
        Condition::Record(&["--escalate-syscall-cores", "0.05", "--escalate-for", "10m"]),
        "record-incident",
    ),
    (Condition::Record(&[]), "record"),
    (
        Condition::Record(&[
            "--signals",
            "cpu,sched,syscalls,processes,net,io",
            "--no-escalate",
        ]),
        "record-exact",
    ),
];

fn run(ctx: &Context, options: &Options) -> Result<Vec<Row>> {
    let (Some(server), Some(benchmark)) = (
        util::find_command("redis-server"),
        util::find_command("redis-benchmark"),
    ) else {
        return Ok(CONDITIONS
            .iter()
            .map(|(_, name)| {
                missing_tool(
                    Options::NAME,
                    name,
                    "redis-server",
                    "redis-server, redis-tools: `cargo xtask setup --bench` installs them",
                )
            })
            .collect());
    };
    let profiler = ctx.release("profiler");
    let scratch = prepare(Options::NAME, &[&profiler])?;
    let port = free_port()?;
    // One CPU for the server, another for the clients, so they do not take turns on one CPU;
    // the profiler is not pinned and runs wherever the scheduler finds room, as on a real host.
    let (server_cpu, client_cpu) = match thread::available_parallelism().map_or(1, |n| n.get()) {
        1 => (None, None),
        _ => (Some("0"), Some("1")),
    };
    let mut server_command = pinned(&server, server_cpu);
    server_command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        // No persistence: no snapshot, no append-only file, nothing written to disk.
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(scratch.path())
        .args(["--daemonize", "no", "--loglevel", "warning"]);
    let benchmark_command = || {
        let mut cmd = pinned(&benchmark, client_cpu);
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", &options.clients.to_string()])
            .args(["-n", &options.requests.to_string()])
            .args(["-r", KEYSPACE, "-t", "set,get", "--csv"]);
        cmd
    };

    println!(
        "bench redis: {} rounds; each runs every condition once, in rotating order",
        options.runs
    );
    print_header_line(9, "server", &util::display(&server_command));
    print_header_line(
        9,
        "workload",
        &format!(
            "{}  (requests per second over SET and GET together)",
            util::display(&benchmark_command())
        ),
    );
    print_header_line(
        9,
        "record",
        &format!(
            "{}  (defaults; started first; workload once it prints \"profiler: attached\"; \
             then SIGINT)",
            util::display(&tracer::record_command(
                &profiler,
                &scratch.path().join("record-N")
            )?)
        ),
    );

    let _server = Server::start(&mut server_command, port)?;
    let mut rows = run_rounds(
        Options::NAME,
        "req/s",
        options.runs,
        &CONDITIONS,
        |condition, round| match condition {
            Condition::Untraced => Ok(throughput(&mut benchmark_command())?.into()),
            Condition::Record(extra_args) => {
                let out = scratch.path().join(format!("record-{round}"));
                under_record(&profiler, &out, extra_args, || {
                    throughput(&mut benchmark_command())
                })
            }
        },
    )?;
    set_goal(&mut rows, "record-always-on", GOAL);
    set_goal(&mut rows, "record-incident", INCIDENT_GOAL);
    if let Some(row) = long_run(&rows) {
        rows.push(row);
    }
    Ok(rows)
}

/// What a redis busy enough to set an incident off after every cooldown keeps over a long run
/// under record's defaults: computed from the always-on and incident rows of this run.
fn long_run(rows: &[Row]) -> Option<Row> {
    let median = |name: &str| {
        let row = rows.iter().find(|row| row.condition == name)?;
        Some((row.summary.as_ref()?.median, row.ratio?))
    };
    let (calm, calm_ratio) = median("record-always-on")?;
    let (busy, busy_ratio) = median("record-incident")?;
    let calm_share = (COOLDOWN + TRIGGER) / (COOLDOWN + TRIGGER + INCIDENT);
    let mix = |calm: f64, busy: f64| calm * calm_share + busy * (1.0 - calm_share);
    let mut row = Row::measured(
        Options::NAME,
        "record-long-run",
        "req/s",
        &[mix(calm, busy)],
    );
    row.runs = 0;
    row.ratio = Some(mix(calm_ratio, busy_ratio));
    row.goal = Some(GOAL);
    row.note = Some(format!(
        "computed, not run: record-always-on for {:.0} s then record-incident for {INCIDENT:.0} s, \
         the defaults' most (an incident {TRIGGER:.0} s after each {COOLDOWN:.0} s cooldown)",
        COOLDOWN + TRIGGER
    ));
    Some(row)
}

/// `program`, through `taskset` onto `cpu` when given.
fn pinned(program: &Path, cpu: Option<&str>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpu]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// The redis-server of the bench; killed when dropped.
struct Server(Child);

impl Server {
    /// Starts it and waits until it answers PING.
    fn start(cmd: &mut Command, port: u16) -> Result<Self> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start `{}`", util::display(cmd)))?;
        let mut server = Self(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.0.try_wait()? {
                bail!(
                    "`{}` exited ({status}) before it answered",
                    util::display(cmd)
                );
            }
            let mut ping = Command::new("redis-cli");
            ping.args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"]);
            if util::stdout_of(&mut ping).is_ok_and(|reply| reply.trim() == "PONG") {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "`{}` did not answer PING within {READY_TIMEOUT:?}",
                    util::display(cmd)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Requests per second over the whole run of `cmd`: each test makes the same number of
/// requests, so that is the harmonic mean of the tests' rates.
fn throughput(cmd: &mut Command) -> Result<f64> {
    let output = util::stdout_of(cmd)?;
    parse_throughput(&output).with_context(|| {
        format!(
            "`{}` printed no \"SET\" and \"GET\" rows with requests per second:\n{output}",
            util::display(cmd)
        )
    })
}

fn parse_throughput(csv: &str) -> Option<f64> {
    let rates: Vec<f64> = csv
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',').map(|field| field.trim_matches('"'));
            let test = fields.next()?;
            let rps = fields.next()?.parse::<f64>().ok()?;
            (["SET", "GET"].contains(&test) && rps > 0.0).then_some(rps)
        })
        .collect();
    (rates.len() == 2).then(|| 2.0 / rates.iter().map(|rps| 1.0 / rps).sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_over_both_tests() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\
                   \"SET\",\"50000.00\",\"0.459\"\n\
                   \"GET\",\"100000.00\",\"0.447\"\n";
        let rps = parse_throughput(csv).unwrap();
        // 1 s for the SETs of 50 000 requests, 0.5 s for the GETs: 100 000 in 1.5 s.
        assert!((rps - 100_000.0 / 1.5).abs() < 1e-6, "{rps}");
        assert_eq!(parse_throughput("\"SET\",\"50000.00\"\n"), None);
        assert_eq!(parse_throughput("ERROR\n"), None);
    }
}
