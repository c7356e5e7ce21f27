//! Bad input, table-driven: every option of diagnose, record, top, flamegraph and doctor with
//! a bad value, unknown pids, unwritable outputs, and corrupt, truncated, binary or huge folded
//! files each end with one `Error:` line naming the option or the problem, exit code 2, nothing
//! on stdout and nothing new on disk. Also where `record` serves its metrics: loopback unless
//! told otherwise.

use std::fs;
use std::path::Path;
use std::time::Duration;

use profiler_tests::{
    ProfilerRun, entries, profiler_command, require_built, require_root, serial, tempdir, utf8,
};

/// Refused before anything is measured: quick. A wrongly accepted run (10 s by default) ends
/// well within it and fails on its exit code.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `args`, with `{file}` a regular file, `{dir}` an empty directory, `{folded}` a good folded
/// file, `{missing}` a path that does not exist, `{out}` a fresh output path and `{pid}` a pid no
/// process has, must be refused with one line containing `names` (same substitutions), leaving
/// the working directory as it was.
fn assert_refused(cases: &[(&[&str], &str)]) {
    let pid = (4_000_000_u32..)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid")
        .to_string();
    for &(args, names) in cases {
        let cwd = tempdir();
        let dir = cwd.path();
        fs::write(dir.join("file"), "not a directory\n").expect("writing a fixture");
        fs::create_dir(dir.join("dir")).expect("creating a fixture");
        fs::write(dir.join("good.folded"), "main;work 3\nmain;idle 1\n").expect("fixture");
        let fill = |text: &str| {
            text.replace("{file}", utf8(&dir.join("file")))
                .replace("{dir}", utf8(&dir.join("dir")))
                .replace("{folded}", utf8(&dir.join("good.folded")))
                .replace("{missing}", utf8(&dir.join("missing")))
                .replace("{out}", utf8(&dir.join("out")))
                .replace("{pid}", &pid)
        };
        let args: Vec<String> = args.iter().map(|arg| fill(arg)).collect();
        let names = fill(names);
        let before = entries(dir);
        let mut command = profiler_command();
        command.args(&args).current_dir(dir);
        let done = ProfilerRun::start(command).finish(TIMEOUT);
        let line = done.error_line();
        assert!(
            line.contains(&names),
            "{args:?}: error does not name {names:?}: {line}"
        );
        assert!(
            line.len() < 600,
            "{args:?}: error line of {} bytes",
            line.len()
        );
        assert!(done.stdout.is_empty(), "{args:?}: stdout:\n{}", done.stdout);
        assert_eq!(
            entries(dir),
            before,
            "{args:?} changed the working directory"
        );
        assert!(
            entries(&dir.join("dir")).is_empty(),
            "{args:?} wrote into {{dir}}"
        );
    }
}

#[test]
fn every_bpf_command_option_with_a_bad_value_is_refused() {
    if !require_root("every_bpf_command_option_with_a_bad_value_is_refused") {
        return;
    }
    let _serial = serial();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let taken = taken.local_addr().expect("its address").to_string();
    let taken: &str = &taken;
    assert_refused(&[
        // diagnose
        (&["diagnose", "--duration", "banana"], "--duration"),
        (&["diagnose", "--duration", "0s"], "at least 100ms"),
        (&["diagnose", "--duration", "25h"], "at most 24h"),
        (&["diagnose", "--duration"], "--duration"),
        (&["diagnose", "--frequency", "0"], "--frequency"),
        (&["diagnose", "--frequency=-5"], "--frequency"),
        (&["diagnose", "--frequency", "10001"], "1..=10000"),
        (&["diagnose", "--frequency", "fast"], "--frequency"),
        (&["diagnose", "--pid", "abc"], "--pid"),
        (&["diagnose", "--pid=-1"], "--pid"),
        (&["diagnose", "--pid", "{pid}"], "no process with pid {pid}"),
        (
            &["diagnose", "--pid", "1", "--pid", "{pid}", "--out", "{out}"],
            "{pid}",
        ),
        (&["diagnose", "--out", "/proc/nope"], "/proc/nope"),
        (&["diagnose", "--out", "{file}"], "not a directory"),
        (&["diagnose", "--out", "{file}/sub"], "{file}/sub"),
        (&["diagnose", "--out", ""], "--out"),
        (
            &["diagnose", "--format", "xml"],
            "[possible values: text, json]",
        ),
        (&["diagnose", "--signals", "cpu,disk"], "'disk'"),
        (&["diagnose", "--signals", ""], "--signals"),
        (&["diagnose", "--bogus"], "--bogus"),
        (&["diagnose", "extra"], "'extra'"),
        // record
        (&["record"], "--out <DIR>"),
        (&["record", "--out", "/proc/nope"], "/proc/nope"),
        (&["record", "--out", "{file}"], "not a directory"),
        (
            &["record", "--out", "{out}", "--window", "500ms"],
            "--window",
        ),
        (&["record", "--out", "{out}", "--window", "x"], "--window"),
        (
            &["record", "--out", "{out}", "--retention", "0s"],
            "--retention",
        ),
        (
            &["record", "--out", "{out}", "--retention", "400days"],
            "--retention",
        ),
        (
            &["record", "--out", "{out}", "--max-disk", "0"],
            "--max-disk",
        ),
        (
            &["record", "--out", "{out}", "--max-disk", "12 parsecs"],
            "--max-disk",
        ),
        (
            &["record", "--out", "{out}", "--frequency", "0"],
            "--frequency",
        ),
        (
            &["record", "--out", "{out}", "--signals", "nope"],
            "--signals",
        ),
        (
            &["record", "--out", "{out}", "--metrics", "nope"],
            "--metrics",
        ),
        (
            &["record", "--out", "{out}", "--metrics", "127.0.0.1:99999"],
            "--metrics",
        ),
        (
            &["record", "--out", "{out}", "--metrics", taken],
            "--metrics",
        ),
        (
            &[
                "record",
                "--out",
                "{out}",
                "--no-metrics",
                "--metrics",
                "127.0.0.1:1",
            ],
            "--no-metrics",
        ),
        (
            &["record", "--out", "{out}", "--no-metrics=yes"],
            "--no-metrics",
        ),
        (&["record", "--out", "{out}", "--top", "0"], "--top"),
        (&["record", "--out", "{out}", "--top", "1001"], "--top"),
        (
            &["record", "--out", "{out}", "--alert", "cpu.cores >> 1"],
            "--alert",
        ),
        (
            &["record", "--out", "{out}", "--alert", "nope > 1"],
            "unknown figure",
        ),
        (
            &["record", "--out", "{out}", "--on-alert", "'unbalanced"],
            "--on-alert",
        ),
        (
            &["record", "--out", "{out}", "--on-alert", ""],
            "--on-alert",
        ),
        (
            &["record", "--out", "{out}", "--on-alert-timeout", "banana"],
            "--on-alert-timeout",
        ),
        (&["record", "--out", "{out}", "--html=yes"], "--html"),
        // top (stdout is a pipe here)
        (&["top"], "--once"),
        (&["top", "--once", "--interval", "100ms"], "at least 200ms"),
        (&["top", "--once", "--interval", "x"], "--interval"),
        (&["top", "--once", "--frequency", "0"], "--frequency"),
        (&["top", "--once", "--signals", "x"], "--signals"),
        (&["top", "--once", "--json"], "--json"),
        (&["top", "--once=1"], "--once"),
        // doctor takes no options
        (&["doctor", "--bogus"], "--bogus"),
        (&["doctor", "extra"], "'extra'"),
        // no command
        (&["frobnicate"], "'frobnicate'"),
    ]);
}

#[test]
fn every_flamegraph_option_with_a_bad_value_is_refused() {
    if !require_built("every_flamegraph_option_with_a_bad_value_is_refused") {
        return;
    }
    assert_refused(&[
        (&["flamegraph"], "<INPUT>"),
        (&["flamegraph", "{missing}"], "{missing}"),
        (&["flamegraph", "{dir}"], "{dir}"),
        (&["flamegraph", "{file}"], "file:1"),
        (&["flamegraph", "--from", "{missing}"], "{missing}"),
        (&["flamegraph", "--from", "{dir}"], "{dir}"),
        (&["flamegraph", "--from", "{file}"], "{file}"),
        (
            &["flamegraph", "--from", "{dir}", "--since", "banana"],
            "--since",
        ),
        (
            &["flamegraph", "--from", "{dir}", "--until", "x"],
            "--until",
        ),
        (&["flamegraph", "{folded}", "--since", "1m"], "--from"),
        (&["flamegraph", "{folded}", "--from", "{dir}"], "--from"),
        (
            &["flamegraph", "{folded}", "--diff", "{missing}"],
            "{missing}",
        ),
        (&["flamegraph", "{folded}", "--diff", "{file}"], "file:1"),
        (
            &["flamegraph", "{folded}", "--out", "/proc/nope/x.svg"],
            "/proc/nope/x.svg",
        ),
        (&["flamegraph", "{folded}", "--out", "{dir}"], "{dir}"),
        (&["flamegraph", "{folded}", "--offcpu=yes"], "--offcpu"),
        (&["flamegraph", "{folded}", "--title"], "--title"),
        // A device has no end: refused before anything is read.
        (&["flamegraph", "/dev/zero"], "not a regular file"),
        (
            &["flamegraph", "{folded}", "--diff", "/dev/zero"],
            "not a regular file",
        ),
        (
            &["flamegraph", "{folded}", "--max-input", "10"],
            "--max-input 10",
        ),
        (
            &["flamegraph", "{folded}", "--max-line", "lots"],
            "--max-line",
        ),
        (
            &["flamegraph", "{folded}", "--max-stacks", "1"],
            "--max-stacks 1",
        ),
        (
            &["flamegraph", "{folded}", "--max-frames", "1"],
            "--max-frames 1",
        ),
    ]);
}

/// Bytes from a fixed-seed generator, NULs and invalid UTF-8 included.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

#[test]
fn corrupt_folded_files_are_refused_without_a_partial_svg() {
    if !require_built("corrupt_folded_files_are_refused_without_a_partial_svg") {
        return;
    }
    // A single 8 MiB line with no count: the error must quote a bounded part of it.
    let mut huge = b"main;".repeat(8 << 20 >> 5);
    huge.extend(b"leaf");
    // Ten stacks each as deep as a line allows, every frame distinct from the first on:
    // drawn, they would take gigabytes; counted, they are too many frames.
    let deep: Vec<u8> = (0..10)
        .flat_map(|i| format!("top{i};{}leaf 1\n", "f;".repeat(500_000)).into_bytes())
        .collect();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        // Cut off in the middle of a line, as an interrupted copy leaves it.
        (
            "cut.folded",
            b"main;a 3\nmain;b 2\nmain;".to_vec(),
            "cut.folded:3:",
        ),
        // Cut off inside the count of the first line: no count at all.
        ("short.folded", b"main;a".to_vec(), "short.folded:1:"),
        ("binary.folded", noise(4096), "binary.folded:1:"),
        ("huge.folded", huge, "huge.folded:1:"),
        ("zero.folded", b"main;a 0\n".to_vec(), "zero.folded"),
        ("deep.folded", deep, "--max-frames 4000000"),
    ];
    for (name, bytes, names) in cases {
        let dir = tempdir();
        let input = dir.path().join(name);
        fs::write(&input, &bytes).expect("writing the input");
        let out = dir.path().join("g.svg");
        let mut command = profiler_command();
        command
            .args(["flamegraph", utf8(&input), "--out", utf8(&out)])
            .current_dir(dir.path());
        let done = ProfilerRun::start(command).finish(TIMEOUT);
        let line = done.error_line();
        assert!(line.contains(names), "{name}: {line}");
        assert!(
            line.len() < 600,
            "{name}: error line of {} bytes",
            line.len()
        );
        assert!(done.stdout.is_empty(), "{name}: stdout not empty");
        assert_eq!(
            entries(dir.path()),
            [name],
            "{name}: files left beside the input"
        );
    }
}

/// Listening TCP sockets of `pid`, as `/proc/net/tcp{,6}` hex `ADDR:PORT` local addresses.
fn listening(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("listing the profiler's fds")
        .filter_map(Result::ok)
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A = LISTEN), inode.
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                found.push(fields[1].to_owned());
            }
        }
    }
    found
}

#[test]
fn metrics_listen_on_loopback_unless_an_address_is_given() {
    if !require_root("metrics_listen_on_loopback_unless_an_address_is_given") {
        return;
    }
    let _serial = serial();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // The default address, 127.0.0.1:9464, then every interface on a free port.
    let cases = [
        (vec![], format!("0100007F:{:04X}", 9464)),
        (
            vec!["--metrics".to_owned(), format!("0.0.0.0:{free}")],
            format!("00000000:{free:04X}"),
        ),
    ];
    for (extra, expected) in cases {
        let dir = tempdir();
        let mut command = profiler_command();
        command
            .args([
                "record",
                "--window",
                "60s",
                "--out",
                utf8(&dir.path().join("rec")),
            ])
            .args(&extra);
        let mut run = ProfilerRun::start(command);
        run.wait_attached();
        assert_eq!(listening(run.pid()), [expected], "{extra:?}");
        run.signal(libc::SIGTERM);
        run.finish(TIMEOUT).assert_success();
    }
}
