//! Sink tests: alerts.jsonl lines, the command check at startup, and real `--on-alert` commands
//! that read the event, fail, or outlive their timeout.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Instant;

use super::*;
use crate::alerts::event::{AlertState, Evidence};

fn event(state: AlertState, pid: u32) -> AlertEvent {
    AlertEvent {
        state,
        rule: "cpu.cores > 0.8 for 2s".to_owned(),
        figure: "cpu.cores".to_owned(),
        pid: Some(pid),
        // What a hostile process could name itself: it must reach the hook as data only.
        comm: "x; touch pwned $(id)".to_owned(),
        app: "x".to_owned(),
        value: Some(0.9),
        threshold: 0.8,
        since: "2026-01-01T10:00:00.000Z".to_owned(),
        at: "2026-01-01T10:00:02.000Z".to_owned(),
        evidence: Evidence::default(),
        incident: None,
        no_space: None,
    }
}

fn lines(path: &Path) -> Vec<AlertEvent> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn appends_one_json_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("record");
    fs::create_dir(&out).unwrap();
    let sink = Sink::new(&out, None, Duration::from_secs(1)).unwrap();
    assert_eq!(sink.path(), out.join(ALERTS_FILE));
    sink.emit(&event(AlertState::Firing, 1)).unwrap();
    sink.emit(&event(AlertState::Resolved, 1)).unwrap();
    drop(sink);
    // Reopened, as by a restarted record: appends, never truncates.
    let sink = Sink::new(&out, None, Duration::from_secs(1)).unwrap();
    sink.emit(&event(AlertState::Firing, 2)).unwrap();
    let written = lines(sink.path());
    assert_eq!(
        written,
        [
            event(AlertState::Firing, 1),
            event(AlertState::Resolved, 1),
            event(AlertState::Firing, 2)
        ]
    );
    let mode = fs::metadata(sink.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(sink.hook_stats(), HookStats::default());
}

#[test]
fn bad_commands_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let new = |command| Sink::new(dir.path(), Some(command), Duration::from_secs(1)).err();
    assert!(matches!(new(""), Some(SinkError::EmptyCommand)));
    assert!(matches!(new("   "), Some(SinkError::EmptyCommand)));
    let err = new("notify 'unterminated").unwrap();
    assert!(matches!(err, SinkError::BadQuoting(_)));
    assert!(err.to_string().contains("unbalanced quotes"), "{err}");
    let err = new("no-such-program-for-profiler-tests --flag").unwrap();
    assert_eq!(
        err.to_string(),
        "--on-alert program \"no-such-program-for-profiler-tests\" not found; give its full \
         path or put it on PATH"
    );
    assert!(matches!(
        new("/nonexistent/hook"),
        Some(SinkError::NotFound(_))
    ));
    assert!(new("sh -c 'exit 0'").is_none());
    let err = Sink::new(Path::new("/proc/nope"), None, Duration::from_secs(1)).err();
    assert!(err.unwrap().to_string().contains("/proc/nope"));
}

#[tokio::test]
async fn the_command_gets_the_event_on_stdin_without_a_shell_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("got.json");
    // The user's own command: a shell because they asked for one, not because we added it.
    let command = format!("sh -c 'cat > \"$1\"' hook {}", got.display());
    let sink = Sink::new(dir.path(), Some(&command), Duration::from_secs(10)).unwrap();
    let sent = event(AlertState::Firing, 42);
    let started = Instant::now();
    sink.emit(&sent).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "emit must not wait for the hook"
    );
    sink.drain().await;
    let text = fs::read_to_string(&got).unwrap();
    assert!(text.ends_with('\n'));
    let received: AlertEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(received, sent);
    assert!(!dir.path().join("pwned").exists());
    assert_eq!(
        sink.hook_stats(),
        HookStats {
            started: 1,
            succeeded: 1,
            ..HookStats::default()
        }
    );
    assert_eq!(lines(sink.path()), [sent]);
}

#[tokio::test]
async fn a_hook_runs_at_the_default_oom_score_whatever_the_recorders() {
    // Raising one's own score needs no privilege; record lowers it, which does.
    fs::write("/proc/self/oom_score_adj", "500").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("adj");
    let command = format!(
        "sh -c 'cat /proc/self/oom_score_adj > \"$1\"' hook {}",
        got.display()
    );
    let sink = Sink::new(dir.path(), Some(&command), Duration::from_secs(10)).unwrap();
    sink.emit(&event(AlertState::Firing, 42)).unwrap();
    sink.drain().await;
    assert_eq!(fs::read_to_string(&got).unwrap().trim(), "0");
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::new(
        dir.path(),
        Some("sh -c 'sleep 5; sleep 5'"),
        Duration::from_millis(200),
    )
    .unwrap();
    let started = Instant::now();
    sink.emit(&event(AlertState::Firing, 1)).unwrap();
    sink.drain().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drained after {:?}",
        started.elapsed()
    );
    assert_eq!(
        sink.hook_stats(),
        HookStats {
            started: 1,
            timed_out: 1,
            ..HookStats::default()
        }
    );
}

#[tokio::test]
async fn failing_hooks_are_counted_and_floods_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    // Does not read stdin and fails: both only warnings.
    let sink = Sink::new(dir.path(), Some("sh -c 'exit 3'"), Duration::from_secs(10)).unwrap();
    sink.emit(&event(AlertState::Firing, 1)).unwrap();
    sink.drain().await;
    assert_eq!(
        sink.hook_stats(),
        HookStats {
            started: 1,
            failed: 1,
            ..HookStats::default()
        }
    );

    let slow = Sink::new(dir.path(), Some("sleep 1"), Duration::from_secs(10)).unwrap();
    let flood = MAX_RUNNING_HOOKS + 3;
    for pid in 0..flood {
        slow.emit(&event(AlertState::Firing, pid as u32)).unwrap();
    }
    slow.drain().await;
    let stats = slow.hook_stats();
    assert_eq!(stats.started, MAX_RUNNING_HOOKS as u64);
    assert_eq!(stats.succeeded, MAX_RUNNING_HOOKS as u64);
    assert_eq!(stats.skipped, 3);
    // Every event is still on disk, hook or not: both sinks share the directory.
    assert_eq!(lines(slow.path()).len(), 1 + flood);
}

#[test]
fn a_link_planted_as_the_alerts_file_is_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::write(&target, "untouched").unwrap();
    let out = dir.path().join("record");
    fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&target, out.join(ALERTS_FILE)).unwrap();
    let err = Sink::new(&out, None, Duration::from_secs(1)).err().unwrap();
    assert!(matches!(err, SinkError::Open { .. }), "{err}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
}
