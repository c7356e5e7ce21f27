//! What another local user can do to a profiler running as root: its metrics port taken down
//! by slow clients, a planted `alerts.jsonl` in the temporary directory, requests other than a
//! scrape. The attacker runs as `nobody`.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use profiler_tests::{
    ProfilerRun, free_port, http_get, profiler_command, record_windows, require_root, serial,
    skip_or_fail, tempdir, utf8,
};

const SLOW_CLIENTS: &str = env!("CARGO_BIN_EXE_slowclients");
/// More than the descriptors a process gets by default (`LimitNOFILE` unset: 1024).
const ATTACKERS: &str = "2000";
const ATTACK_SECONDS: u64 = 9;

/// `command` as user nobody, or None (after skipping or failing) without setpriv.
fn as_nobody(test: &str, program: &str) -> Option<Command> {
    let works = Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        skip_or_fail(test, "needs setpriv (util-linux) to act as another user");
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(program);
    Some(command)
}

/// The status line and body of one request written as is.
fn raw_request(port: u16, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("setting a timeout");
    stream.write_all(request.as_bytes()).expect("sending");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// `record` into `root` in 2 s windows, serving metrics on a free loopback port.
fn record_serving_metrics(root: &Path) -> (Command, u16) {
    let port = free_port();
    let mut command = profiler_command();
    command
        .args(["record", "--out", utf8(root), "--window", "2s", "--metrics"])
        .arg(format!("127.0.0.1:{port}"));
    (command, port)
}

#[test]
fn slow_clients_cannot_take_the_metrics_port_or_the_recorder_down() {
    const TEST: &str = "slow_clients_cannot_take_the_metrics_port_or_the_recorder_down";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let Some(mut attack) = as_nobody(TEST, SLOW_CLIENTS) else {
        return;
    };
    let dir = tempdir();
    let root = dir.path().join("rec");
    let (mut command, port) = record_serving_metrics(&root);
    // The descriptors a service gets when its unit sets no LimitNOFILE.
    // SAFETY: setrlimit is async-signal-safe; the struct lives on this stack.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    let attack_started = Instant::now();
    let attacker = attack
        .args([&port.to_string(), ATTACKERS, &ATTACK_SECONDS.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the attacker as nobody");
    let attacked = attacker
        .wait_with_output()
        .expect("waiting for the attacker");
    let held = String::from_utf8_lossy(&attacked.stdout).into_owned();
    assert!(attacked.status.success(), "attacker failed: {held}");
    // Once the attackers are gone, a scrape is answered at once.
    let asked = Instant::now();
    let scrape = http_get(port, "/metrics");
    let answered_in = asked.elapsed();
    let windows_during_attack = record_windows(&root).len();
    run.signal(libc::SIGTERM);
    let finished = run.finish(Duration::from_secs(30));
    assert!(
        finished.status.success(),
        "record died under the attack ({held}): {}",
        finished.stderr
    );
    let scrape = scrape.unwrap_or_else(|err| panic!("no scrape after the attack: {err}"));
    assert!(scrape.contains("profiler_"), "{scrape}");
    assert!(
        answered_in < Duration::from_secs(1),
        "the scrape took {answered_in:?}"
    );
    // Windows of 2 s kept being written while the port was under attack.
    let expected = (attack_started.elapsed().as_secs() / 2).saturating_sub(2) as usize;
    assert!(
        windows_during_attack >= expected.max(3),
        "{windows_during_attack} windows in {:?} of attack ({held})",
        attack_started.elapsed()
    );
}

#[test]
fn the_metrics_port_serves_only_get_and_head_of_metrics() {
    const TEST: &str = "the_metrics_port_serves_only_get_and_head_of_metrics";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let dir = tempdir();
    let (command, port) = record_serving_metrics(&dir.path().join("rec"));
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    let ask = |method: &str, path: &str| {
        raw_request(
            port,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let (get, body) = ask("GET", "/metrics");
    let (head, _) = ask("HEAD", "/metrics");
    let (post, _) = ask("POST", "/metrics");
    let (delete, _) = ask("DELETE", "/metrics");
    let (elsewhere, _) = ask("GET", "/");
    let (other, _) = ask("GET", "/admin");
    run.signal(libc::SIGTERM);
    run.finish(Duration::from_secs(30)).assert_success();
    assert!(get.contains(" 200 "), "{get}");
    assert!(body.contains("profiler_"), "{body}");
    assert!(head.contains(" 200 "), "{head}");
    assert!(post.contains(" 405 "), "POST answered {post}");
    assert!(delete.contains(" 405 "), "DELETE answered {delete}");
    assert!(elsewhere.contains(" 404 "), "/ answered {elsewhere}");
    assert!(other.contains(" 404 "), "/admin answered {other}");
}

#[test]
fn a_planted_alerts_file_in_the_temporary_directory_is_never_opened() {
    const TEST: &str = "a_planted_alerts_file_in_the_temporary_directory_is_never_opened";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let Some(mut plant) = as_nobody(TEST, "ln") else {
        return;
    };
    // A shared temporary directory, writable by everyone, as /tmp is.
    let shared = tempdir();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777))
        .expect("making the directory shared");
    let target = shared.path().join("made-by-root");
    let planted = shared.path().join("alerts.jsonl");
    let status = plant
        .args(["-s", utf8(&target), utf8(&planted)])
        .status()
        .expect("planting the symlink as nobody");
    assert!(status.success(), "nobody could not plant the symlink");
    let out = tempdir();
    let mut command = profiler_command();
    command
        .env("TMPDIR", shared.path())
        .args([
            "record",
            "--out",
            utf8(&out.path().join("rec")),
            "--no-metrics",
        ])
        .args(["--on-alert", "true"]);
    let mut run = ProfilerRun::start(command);
    run.wait_attached();
    run.signal(libc::SIGTERM);
    run.finish(Duration::from_secs(30)).assert_success();
    assert!(
        !Path::new(&target).exists(),
        "root followed the planted {} and created {}",
        planted.display(),
        target.display()
    );
}

/// `dir` made shared as /tmp is: everyone may create entries, only their owner may remove them.
fn shared_dir() -> tempfile::TempDir {
    let shared = tempdir();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777))
        .expect("making the directory shared");
    shared
}

/// Runs `script` with `sh -c` as nobody in `cwd`; false (after skipping or failing) when that
/// cannot be done.
fn as_nobody_sh(test: &str, cwd: &Path, script: &str) -> bool {
    let Some(mut sh) = as_nobody(test, "sh") else {
        return false;
    };
    let status = sh
        .args(["-c", script])
        .current_dir(cwd)
        .status()
        .expect("running a shell as nobody");
    assert!(status.success(), "nobody could not run: {script}");
    true
}

/// A root-owned directory holding one file, and that file's content, to check nothing was
/// written through a planted link.
fn victim() -> (tempfile::TempDir, String) {
    let dir = tempdir();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 755");
    let content = "root's file, not to be touched\n".to_owned();
    fs::write(dir.path().join("file"), &content).expect("writing the victim file");
    (dir, content)
}

fn assert_untouched(victim: &Path, content: &str) {
    let names: Vec<String> = fs::read_dir(victim)
        .expect("listing the victim directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["file"], "root wrote into {}", victim.display());
    let now = fs::read_to_string(victim.join("file")).expect("reading the victim file");
    assert_eq!(
        now,
        content,
        "root changed {}",
        victim.join("file").display()
    );
}

#[test]
fn an_output_directory_another_user_can_write_to_is_refused() {
    const TEST: &str = "an_output_directory_another_user_can_write_to_is_refused";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    let shared = shared_dir();
    let (victim, content) = victim();
    let target = victim.path().join("file");
    // nobody's own directory, with the recorder's alert file planted as a link to root's file,
    // and a link to root's directory.
    let script = format!(
        "mkdir theirs && ln -s {target} theirs/alerts.jsonl && ln -s {dir} link",
        target = utf8(&target),
        dir = utf8(victim.path())
    );
    if !as_nobody_sh(TEST, shared.path(), &script) {
        return;
    }
    // Root's own, but writable by everyone and not sticky: anyone can plant names in it.
    let open = tempdir();
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).expect("chmod 777");
    let theirs = shared.path().join("theirs");
    let link = shared.path().join("link");
    let cases: [(&[&str], &Path, &str); 4] = [
        (&["record", "--no-metrics"], &theirs, "owned by uid 65534"),
        (
            &["diagnose", "--duration", "1s"],
            &theirs,
            "owned by uid 65534",
        ),
        (
            &["diagnose", "--duration", "1s"],
            &link,
            "symlink owned by uid 65534",
        ),
        (
            &["record", "--no-metrics"],
            open.path(),
            "writable by other users",
        ),
    ];
    for (args, out, reason) in cases {
        let mut command = profiler_command();
        command.args(args).arg("--out").arg(out);
        let done = ProfilerRun::start(command).finish(Duration::from_secs(30));
        let line = done.error_line();
        assert_eq!(
            done.status.code(),
            Some(2),
            "{args:?} --out {}: {line}",
            out.display()
        );
        assert!(
            line.contains("refusing output directory") && line.contains(reason),
            "{args:?} --out {}: {line}",
            out.display()
        );
    }
    assert_untouched(victim.path(), &content);
    let left: Vec<_> = fs::read_dir(&theirs).expect("listing").collect();
    assert_eq!(left.len(), 1, "root wrote into nobody's directory");
    assert_eq!(fs::read_dir(open.path()).expect("listing").count(), 0);
}

#[test]
fn diagnose_default_output_cannot_be_planted() {
    const TEST: &str = "diagnose_default_output_cannot_be_planted";
    if !require_root(TEST) {
        return;
    }
    let _serial = serial();
    // Run where everyone may create entries, as in /tmp; nobody plants the names diagnose
    // used to take, `profiler-<time>`, for the next two minutes, as links to root's directory.
    let cwd = shared_dir();
    let (victim, content) = victim();
    let script = format!(
        "for s in $(seq 0 120); do ln -s {dir} \"profiler-$(date -d \"+$s sec\" +%Y%m%d-%H%M%S)\"; \
         done",
        dir = utf8(victim.path())
    );
    if !as_nobody_sh(TEST, cwd.path(), &script) {
        return;
    }
    let mut command = profiler_command();
    command
        .args(["diagnose", "--duration", "1s"])
        .current_dir(cwd.path());
    let done = ProfilerRun::start(command).finish(Duration::from_secs(60));
    done.assert_success();
    assert_untouched(victim.path(), &content);
    let written = done
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("profiler: wrote "))
        .unwrap_or_else(|| panic!("no `wrote` line:\n{}", done.stderr));
    let out = cwd.path().join(written);
    let meta = fs::symlink_metadata(&out).expect("the output directory");
    assert!(meta.is_dir(), "{} is not a directory", out.display());
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o700,
        "{}",
        out.display()
    );
    assert!(out.join("report.json").is_file());
}
