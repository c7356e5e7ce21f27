//! Stacks of the distribution's own binaries, built without frame pointers, against `perf record
//! --call-graph dwarf` on the same run (perf copies each sample's stack and unwinds it in
//! userspace): python3 running a loop, `gzip -9`, `xz` and `sha256sum` must be unwound through
//! their `main` in at least 90 % of their samples, and the frames above each sample's leaf must
//! be the ones perf finds, compared by object and address.

use std::{
    collections::HashMap,
    fs::File,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use profiler_tests::{diagnose_window, find_go, require_root, serial, skip_or_fail, tempdir};

const FREQUENCY: &str = "199";
const WINDOW: Duration = Duration::from_secs(3);
/// Share of samples that must reach the frame that called `main`.
const ROOTED_PERCENT: f64 = 90.0;
/// Share of samples whose caller frames match perf's, as the overlap of the two distributions
/// (two independent samplings of one program: sampling noise alone leaves a few points out).
const MATCHING_PERCENT: f64 = 75.0;
/// Frames compared above the leaf (the leaf itself is the interrupted pc, the same for both).
const CALLERS: usize = 4;
/// The frame that calls `main` in glibc, named from its exported symbols (its own,
/// `__libc_start_call_main`, is local).
const ROOTS: [&str; 3] = [
    "__libc_start_main",
    "__libc_start_call_main",
    "start_thread",
];

/// A workload: a Debian binary, its arguments and what it reads.
struct Program {
    name: &'static str,
    exe: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
}

const PROGRAMS: [Program; 4] = [
    Program {
        name: "python3",
        exe: "/usr/bin/python3",
        args: &["-c", "while True: sum(i * i for i in range(10000))"],
        stdin: "/dev/null",
    },
    Program {
        name: "gzip",
        exe: "/usr/bin/gzip",
        args: &["-9"],
        stdin: "/dev/urandom",
    },
    Program {
        name: "xz",
        exe: "/usr/bin/xz",
        args: &["-6", "-T1"],
        stdin: "/dev/urandom",
    },
    Program {
        name: "sha256sum",
        exe: "/usr/bin/sha256sum",
        args: &[],
        stdin: "/dev/zero",
    },
];

/// A user frame: the object's file name and the address in the object.
type Frame = (String, u64);

#[test]
fn debian_binaries_are_unwound_to_main_and_match_perf_dwarf() {
    const TEST: &str = "debian_binaries_are_unwound_to_main_and_match_perf_dwarf";
    if !require_root(TEST) {
        return;
    }
    let Some(go) = find_go() else {
        skip_or_fail(
            TEST,
            "go is not installed (cargo xtask setup installs golang-go)",
        );
        return;
    };
    let _serial = serial();
    let mut failures = Vec::new();
    for program in &PROGRAMS {
        let (rooted, matching) = measure(program, &go);
        eprintln!(
            "unwind fidelity: {}",
            serde_json::json!({"program": program.name, "rooted": rooted, "matching": matching})
        );
        if rooted < ROOTED_PERCENT {
            failures.push(format!(
                "{}: {rooted:.1} % of samples reach main's caller",
                program.name
            ));
        }
        if matching < MATCHING_PERCENT {
            failures.push(format!(
                "{}: {matching:.1} % of samples' callers match perf's",
                program.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs the program under both tools: the share of our samples that reach `main`'s caller, and
/// the share of samples whose callers match perf's.
fn measure(program: &Program, go: &Path) -> (f64, f64) {
    let dir = tempdir();
    let mut workload = Killed(
        Command::new(program.exe)
            .args(program.args)
            .stdin(File::open(program.stdin).expect("opening the workload's input"))
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the workload"),
    );
    let pid = workload.0.id().to_string();
    let data = dir.path().join("perf.data");
    let perf = Command::new("perf")
        .args([
            "record",
            "--call-graph",
            "dwarf",
            "-F",
            FREQUENCY,
            "-p",
            &pid,
            "-o",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting perf record (cargo xtask setup installs linux-perf)");
    thread::sleep(Duration::from_millis(500));
    let run = diagnose_window(
        WINDOW,
        &["--signals", "cpu", "--frequency", FREQUENCY, "--pid", &pid],
        |_| {},
    );
    // SAFETY: kill(2) on perf's pid, a child not yet reaped, so the pid is still its own.
    unsafe { libc::kill(perf.id() as libc::pid_t, libc::SIGINT) };
    let perf_done = perf.wait_with_output().expect("waiting for perf record");
    let perf_log = String::from_utf8_lossy(&perf_done.stderr);
    assert!(
        perf_log.contains("Captured and wrote"),
        "perf record failed: {perf_log}"
    );
    let _ = workload.0.kill();

    let ours = pprof_samples(go, &run.out.join("profile.pb.gz"), &pid);
    let theirs = perf_samples(&data);
    assert!(ours.len() > 100, "{}: {} samples", program.name, ours.len());
    assert!(theirs.len() > 100, "perf: {} samples", theirs.len());
    let rooted = ours.iter().filter(|s| s.rooted).count() as f64 * 100.0 / ours.len() as f64;
    let matching = overlap(&ours, &theirs);
    (rooted, matching)
}

/// One sample's user stack, leaf first.
struct Sample {
    frames: Vec<Frame>,
    /// It reaches a frame of [`ROOTS`].
    rooted: bool,
}

impl Sample {
    /// What is compared: the leaf's object and the callers above it.
    fn callers(&self) -> Vec<Frame> {
        let mut key: Vec<Frame> = self
            .frames
            .iter()
            .take(1)
            .map(|(o, _)| (o.clone(), 0))
            .collect();
        key.extend(self.frames.iter().skip(1).take(CALLERS).cloned());
        key
    }
}

/// The overlap of the two distributions of callers, in percent.
fn overlap(ours: &[Sample], theirs: &[Sample]) -> f64 {
    let shares = |samples: &[Sample]| {
        let mut counts: HashMap<Vec<Frame>, f64> = HashMap::new();
        for sample in samples {
            *counts.entry(sample.callers()).or_default() += 1.0 / samples.len() as f64;
        }
        counts
    };
    let (ours, theirs) = (shares(ours), shares(theirs));
    ours.iter()
        .map(|(key, share)| share.min(theirs.get(key).copied().unwrap_or(0.0)))
        .sum::<f64>()
        * 100.0
}

/// The process's samples in our profile, read by `go tool pprof -raw` (each sample's locations
/// leaf first, each location's address and mapping, each mapping's range, offset and file).
fn pprof_samples(go: &Path, profile: &Path, pid: &str) -> Vec<Sample> {
    let output = Command::new(go)
        .args(["tool", "pprof", "-raw"])
        .arg(profile)
        .output()
        .expect("running go tool pprof -raw");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let raw = Raw::parse(&text);
    raw.samples
        .iter()
        .filter(|(_, _, sample_pid)| sample_pid == pid)
        .flat_map(|(count, ids, _)| {
            let frames: Vec<Frame> = ids.iter().filter_map(|id| raw.user_frame(*id)).collect();
            let rooted = ids.iter().any(|id| {
                raw.locations
                    .get(id)
                    .is_some_and(|l| ROOTS.contains(&l.2.as_str()))
            });
            (0..*count).map(move |_| Sample {
                frames: frames.clone(),
                rooted,
            })
        })
        .collect()
}

/// `go tool pprof -raw`'s text: samples (count, location ids, pid label), locations (address,
/// mapping, function) and mappings (start, offset, file).
#[derive(Default)]
struct Raw {
    samples: Vec<(u64, Vec<u64>, String)>,
    locations: HashMap<u64, (u64, u64, String)>,
    mappings: HashMap<u64, (u64, u64, String)>,
}

impl Raw {
    fn parse(text: &str) -> Self {
        let mut raw = Raw::default();
        let mut section = "";
        for line in text.lines() {
            let trimmed = line.trim();
            match trimmed {
                "Samples:" | "Locations" | "Mappings" => {
                    section = trimmed;
                    continue;
                }
                _ => {}
            }
            match section {
                "Samples:" => raw.sample_line(trimmed),
                "Locations" => raw.location_line(trimmed),
                "Mappings" => raw.mapping_line(trimmed),
                _ => {}
            }
        }
        raw
    }

    /// `<count> <value>: <ids…>`, then `pid:[N]` on a line of its own.
    fn sample_line(&mut self, line: &str) {
        if let Some(pid) = line.strip_prefix("pid:[").and_then(|p| p.strip_suffix(']')) {
            if let Some(last) = self.samples.last_mut() {
                last.2 = pid.to_owned();
            }
            return;
        }
        let Some((counts, ids)) = line.split_once(':') else {
            return;
        };
        let Some(Ok(count)) = counts.split_whitespace().next().map(str::parse::<u64>) else {
            return;
        };
        let ids: Option<Vec<u64>> = ids.split_whitespace().map(|id| id.parse().ok()).collect();
        if let Some(ids) = ids {
            self.samples.push((count, ids, String::new()));
        }
    }

    /// `<id>: 0x<address> M=<mapping> <function> :0 s=0`.
    fn location_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let (Some(id), Some(address), Some(mapping), Some(function)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return;
        };
        let id = id.trim_end_matches(':').parse().ok();
        let address = u64::from_str_radix(address.trim_start_matches("0x"), 16).ok();
        let mapping = mapping.strip_prefix("M=").and_then(|m| m.parse().ok());
        if let (Some(id), Some(address), Some(mapping)) = (id, address, mapping) {
            self.locations
                .insert(id, (address, mapping, function.to_owned()));
        }
    }

    /// `<id>: 0x<start>/0x<limit>/0x<offset> <file> <build id> [FN]…`.
    fn mapping_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let (Some(id), Some(range), Some(file)) = (words.next(), words.next(), words.next()) else {
            return;
        };
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        let parts: Vec<Option<u64>> = range.split('/').map(hex).collect();
        if let (Ok(id), [Some(start), Some(_), Some(offset)]) =
            (id.trim_end_matches(':').parse(), parts.as_slice())
        {
            self.mappings.insert(id, (*start, *offset, file.to_owned()));
        }
    }

    /// A location in a user object as (file name, object address); `None` for the kernel's.
    fn user_frame(&self, id: u64) -> Option<Frame> {
        let (address, mapping, _) = self.locations.get(&id)?;
        let (start, offset, file) = self.mappings.get(mapping)?;
        if file.starts_with('[') {
            return None;
        }
        Some((file_name(file), address - start + offset))
    }
}

/// Each sample of `perf script`: its user frames, addresses as perf prints them (in the object).
fn perf_samples(data: &Path) -> Vec<Sample> {
    let output = Command::new("perf")
        .args(["script", "-F", "ip,dso", "--no-inline", "-i"])
        .arg(data)
        .output()
        .expect("running perf script");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let frames = block
                .lines()
                .filter_map(|line| {
                    let (address, dso) = line.trim().split_once(' ')?;
                    let dso = dso.trim().trim_start_matches('(').trim_end_matches(')');
                    if dso.starts_with('[') {
                        return None;
                    }
                    Some((file_name(dso), u64::from_str_radix(address, 16).ok()?))
                })
                .collect();
            Sample {
                frames,
                rooted: false,
            }
        })
        .collect()
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// The workload, killed when the test ends however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
