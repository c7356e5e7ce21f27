//! An alert firing or resolving: one line of alerts.jsonl, and what `--on-alert` reads on stdin.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    collect::space::Holder,
    report::{Incident, TriggerKind},
    signals::Signal,
    symbolize::FoldedStack,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition has held for the rule's `for` duration.
    Firing,
    /// A firing condition stopped holding, or its subject is gone.
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub state: AlertState,
    /// The rule's canonical text.
    pub rule: String,
    /// The figure compared, `app.`-prefixed for application rules.
    pub figure: String,
    /// Null for application rules.
    pub pid: Option<u32>,
    /// The process's name; for application rules, the name of its busiest process (the
    /// application's name when none ran this tick).
    pub comm: String,
    /// The process's cgroup if known, else its name; for application rules the application.
    pub app: String,
    /// The figure this tick; null on a resolution when the subject is gone from the tick or the
    /// figure went unmeasured.
    pub value: Option<f64>,
    /// In the figure's base unit (cores, ratio, per second, bytes): units are resolved.
    pub threshold: f64,
    /// RFC 3339, UTC, milliseconds: when the condition started holding (the start of the first
    /// tick it held in).
    pub since: String,
    /// RFC 3339, UTC, milliseconds: the end of this tick.
    pub at: String,
    pub evidence: Evidence,
    /// Only on the events that open and close an incident (`record`'s escalation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentNote>,
    /// Only on the events that open and close a stretch of windows lost for lack of space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_space: Option<NoSpaceNote>,
}

/// The output's file system filled up: who holds the most of it in open files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoSpaceNote {
    /// The directory windows could not be written to.
    pub out: String,
    /// The holder's files open there (each once), and those of them deleted while open.
    pub files: u64,
    pub deleted: u64,
}

/// The rule of the alert a full output file system raises.
pub const NO_SPACE_RULE: &str = "no space for windows";

/// An incident an alert sink hears of: it fires when the exact probes attach and resolves when
/// its window is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentNote {
    pub trigger: TriggerKind,
    /// What the always-on figures showed, in words.
    pub reason: String,
    /// The signals attached for it.
    pub escalated: Vec<Signal>,
    /// The incident window's directory under `--out`, once written.
    pub window: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The process's hottest leaf function this tick (an application's busiest process's).
    pub hottest: Option<String>,
    /// Folded stack lines (`frame;frame;... count`) of the subject, busiest first. The engine
    /// leaves it empty: stacks are not in the report, the caller holding them fills it in.
    pub top_stacks: Vec<String>,
    /// Whom the subject kept waiting for a CPU this tick, largest delay first, at most five.
    pub victims: Vec<Victim>,
    /// For a `--victim` subject: who held the CPUs it waited for this tick, largest delay
    /// first, at most five.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<Victim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Victim {
    pub pid: u32,
    pub comm: String,
    /// Time its threads waited for a CPU the subject held.
    pub delay_ns: u64,
}

impl Evidence {
    /// Fills in the subject's stacks (busiest first), and the hottest function from them when
    /// the report did not name one.
    pub fn add_stacks(&mut self, stacks: &[FoldedStack]) {
        if self.hottest.is_none() {
            self.hottest = crate::analyze::hottest(stacks).map(|h| h.function);
        }
        self.top_stacks = stacks
            .iter()
            .map(|(frames, count)| format!("{} {count}", frames.join(";")))
            .collect();
    }
}

impl AlertEvent {
    /// The event of an incident starting (`window` none) or ending (its window's directory),
    /// at `at`. Its rule is `incident: <trigger>`; host pressure has no process, so its subject
    /// is the host.
    pub fn incident(
        incident: &Incident,
        state: AlertState,
        at: Timestamp,
        window: Option<String>,
    ) -> Self {
        let comm = incident.comm.clone().unwrap_or_else(|| "host".to_owned());
        Self {
            state,
            rule: format!("incident: {}", incident.trigger.as_str()),
            figure: format!("incident.{}", incident.trigger.as_str()),
            pid: incident.pid,
            app: comm.clone(),
            comm,
            value: None,
            threshold: 0.0,
            since: incident.fired_at.clone(),
            at: rfc3339(at),
            evidence: Evidence::default(),
            no_space: None,
            incident: Some(IncidentNote {
                trigger: incident.trigger,
                reason: incident.reason.clone(),
                escalated: incident.escalated.clone(),
                window,
            }),
        }
    }

    /// A window lost for lack of space (`Firing`), naming `holder`, the process holding the
    /// most space in files open on the output's file system (the host when none holds any);
    /// or windows written again (`Resolved`, with the same subject).
    pub fn no_space(
        out: &std::path::Path,
        holder: Option<&Holder>,
        state: AlertState,
        (since, at): (Timestamp, Timestamp),
    ) -> Self {
        let comm = holder.map_or_else(|| "host".to_owned(), |h| h.comm.clone());
        Self {
            state,
            rule: NO_SPACE_RULE.to_owned(),
            figure: "disk.held_bytes".to_owned(),
            pid: holder.map(|h| h.pid),
            app: comm.clone(),
            comm,
            value: holder.map(|h| h.bytes as f64),
            threshold: 0.0,
            since: rfc3339(since),
            at: rfc3339(at),
            evidence: Evidence::default(),
            incident: None,
            no_space: Some(NoSpaceNote {
                out: out.display().to_string(),
                files: holder.map_or(0, |h| h.files),
                deleted: holder.map_or(0, |h| h.deleted),
            }),
        }
    }

    /// One line for logs, e.g. `firing: cpu.cores > 0.8 for 2s: burner (pid 42) at 0.99 since
    /// 2026-01-01T10:00:00.000Z`.
    pub fn summary(&self) -> String {
        if let Some(note) = &self.incident {
            return self.incident_summary(note);
        }
        if let Some(note) = &self.no_space {
            return self.no_space_summary(note);
        }
        let who = match self.pid {
            Some(pid) if self.app != self.comm => {
                format!("{} (pid {pid}, app {})", self.comm, self.app)
            }
            Some(pid) => format!("{} (pid {pid})", self.comm),
            None => format!("app {}", self.app),
        };
        // No value: the subject is gone from the tick, or its figure went unmeasured.
        let now = match self.value {
            Some(value) => format!("at {}", number(value)),
            None => "no value this tick".to_owned(),
        };
        let mut line = format!(
            "{}: {}: {who} {now} since {}",
            self.state.as_str(),
            self.rule,
            self.since
        );
        if let Some(hottest) = &self.evidence.hottest {
            line.push_str(&format!("; hottest {hottest}"));
        }
        if let Some(victim) = self.evidence.victims.first() {
            line.push_str(&format!(
                "; kept {} (pid {}) waiting {:.3}s",
                victim.comm,
                victim.pid,
                victim.delay_ns as f64 / 1e9
            ));
        }
        line
    }
}

impl AlertEvent {
    fn no_space_summary(&self, note: &NoSpaceNote) -> String {
        let state = self.state.as_str();
        let rule = &self.rule;
        let out = &note.out;
        if self.state == AlertState::Resolved {
            return format!("{state}: {rule}: writing windows to {out} again");
        }
        let Some(pid) = self.pid else {
            return format!(
                "{state}: {rule}: {out} is full; no process was found holding open files on \
                 it (the space may be in closed files)"
            );
        };
        let held = self.value.unwrap_or(0.0) / f64::from(1 << 20);
        let files = match note.files {
            1 => "1 open file".to_owned(),
            n => format!("{n} open files"),
        };
        let deleted = match note.deleted {
            0 => String::new(),
            n => format!(", {n} of them deleted"),
        };
        format!(
            "{state}: {rule}: {out} is full; {} (pid {pid}) holds {held:.1} MiB there in \
             {files}{deleted}",
            self.comm
        )
    }

    fn incident_summary(&self, note: &IncidentNote) -> String {
        let who = match self.pid {
            Some(pid) => format!("{} (pid {pid})", self.comm),
            None => self.comm.clone(),
        };
        let window = note
            .window
            .as_ref()
            .map_or_else(String::new, |dir| format!("; window {dir}"));
        format!(
            "{}: {}: {who}: {}{window}",
            self.state.as_str(),
            self.rule,
            note.reason
        )
    }
}

/// The timestamps of events: fixed millisecond precision, so the text of two of them sorts as
/// they do in time.
pub fn rfc3339(at: Timestamp) -> String {
    format!("{at:.3}")
}

/// A figure's value for humans: three decimals below a thousand, SI suffixes above.
fn number(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e12 => (value / 1e12, "T"),
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "K"),
        _ => (value, ""),
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AlertEvent {
        AlertEvent {
            state: AlertState::Firing,
            rule: "cpu.cores > 0.8 for 2s".to_owned(),
            figure: "cpu.cores".to_owned(),
            pid: Some(42),
            comm: "burner".to_owned(),
            app: "/user.slice/burn.scope".to_owned(),
            value: Some(0.987),
            threshold: 0.8,
            since: "2026-01-01T10:00:00.000Z".to_owned(),
            at: "2026-01-01T10:00:02.000Z".to_owned(),
            evidence: Evidence {
                hottest: Some("burner_inner_gamma".to_owned()),
                top_stacks: vec![],
                victims: vec![Victim {
                    pid: 7,
                    comm: "waker".to_owned(),
                    delay_ns: 1_500_000_000,
                }],
                culprits: vec![],
            },
            incident: None,
            no_space: None,
        }
    }

    #[test]
    fn a_full_disk_names_who_holds_it_and_resolves_when_writing_again() {
        let holder = Holder {
            pid: 4224,
            comm: "logflood".to_owned(),
            bytes: 3 << 20,
            files: 2,
            deleted: 1,
        };
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let out = std::path::Path::new("/var/lib/profiler");
        let mut event = AlertEvent::no_space(out, Some(&holder), AlertState::Firing, (at, at));
        assert_eq!(
            event.summary(),
            "firing: no space for windows: /var/lib/profiler is full; logflood (pid 4224) \
             holds 3.0 MiB there in 2 open files, 1 of them deleted"
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["pid"], 4224);
        assert_eq!(json["value"], f64::from(3 << 20));
        assert_eq!(json["no_space"]["deleted"], 1);
        assert!(json.get("incident").is_none());
        event.state = AlertState::Resolved;
        assert_eq!(
            event.summary(),
            "resolved: no space for windows: writing windows to /var/lib/profiler again"
        );
        let nobody = AlertEvent::no_space(out, None, AlertState::Firing, (at, at));
        assert!(
            nobody.summary().contains("no process was found"),
            "{}",
            nobody.summary()
        );
        assert_eq!(nobody.comm, "host");
    }

    #[test]
    fn an_incident_fires_and_resolves_naming_its_trigger_and_window() {
        let incident = Incident {
            trigger: TriggerKind::CpuPressure,
            pid: None,
            comm: None,
            reason: "some task waited for a CPU 97 % of the time for 2 ticks".to_owned(),
            fired_at: "2026-01-01T10:00:00.000Z".to_owned(),
            escalated: vec![Signal::Syscalls, Signal::Net],
        };
        let at = "2026-01-01T10:00:11Z".parse().unwrap();
        let window = Some("20260101T100000.000Z-incident".to_owned());
        let ended = AlertEvent::incident(&incident, AlertState::Resolved, at, window);
        let json = serde_json::to_value(&ended).unwrap();
        assert_eq!(json["rule"], "incident: cpu_pressure");
        assert_eq!(json["comm"], "host");
        assert!(json["pid"].is_null());
        assert_eq!(
            json["incident"]["escalated"],
            serde_json::json!(["syscalls", "net"])
        );
        assert_eq!(json["incident"]["window"], "20260101T100000.000Z-incident");
        assert_eq!(
            ended.summary(),
            "resolved: incident: cpu_pressure: host: some task waited for a CPU 97 % of the time \
             for 2 ticks; window 20260101T100000.000Z-incident"
        );
    }

    #[test]
    fn json_shape_is_stable() {
        let json = serde_json::to_value(event()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": "firing",
                "rule": "cpu.cores > 0.8 for 2s",
                "figure": "cpu.cores",
                "pid": 42,
                "comm": "burner",
                "app": "/user.slice/burn.scope",
                "value": 0.987,
                "threshold": 0.8,
                "since": "2026-01-01T10:00:00.000Z",
                "at": "2026-01-01T10:00:02.000Z",
                "evidence": {
                    "hottest": "burner_inner_gamma",
                    "top_stacks": [],
                    "victims": [{"pid": 7, "comm": "waker", "delay_ns": 1_500_000_000_u64}],
                },
            })
        );
        let back: AlertEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event());
    }

    #[test]
    fn app_and_gone_subjects_serialize_nulls() {
        let mut gone = event();
        gone.state = AlertState::Resolved;
        gone.pid = None;
        gone.value = None;
        gone.evidence = Evidence::default();
        let json = serde_json::to_value(&gone).unwrap();
        assert_eq!(json["state"], "resolved");
        assert!(json["pid"].is_null() && json["value"].is_null());
        assert!(json["evidence"]["hottest"].is_null());
    }

    #[test]
    fn summary_is_one_line_naming_rule_subject_and_value() {
        let line = event().summary();
        assert_eq!(
            line,
            "firing: cpu.cores > 0.8 for 2s: burner (pid 42, app /user.slice/burn.scope) at \
             0.987 since 2026-01-01T10:00:00.000Z; hottest burner_inner_gamma; kept waker \
             (pid 7) waiting 1.500s"
        );
        let mut gone = event();
        gone.state = AlertState::Resolved;
        gone.value = None;
        gone.app = gone.comm.clone();
        gone.evidence = Evidence::default();
        assert_eq!(
            gone.summary(),
            "resolved: cpu.cores > 0.8 for 2s: burner (pid 42) no value this tick since \
             2026-01-01T10:00:00.000Z"
        );
        let mut app = event();
        app.pid = None;
        app.value = Some(250e6);
        assert!(app.summary().contains("app /user.slice/burn.scope at 250M"));
    }

    #[test]
    fn timestamps_sort_as_text() {
        let whole = Timestamp::from_second(1_767_261_600).unwrap();
        let later = Timestamp::from_millisecond(1_767_261_600_500).unwrap();
        assert_eq!(rfc3339(whole), "2026-01-01T10:00:00.000Z");
        assert_eq!(rfc3339(later), "2026-01-01T10:00:00.500Z");
        assert!(rfc3339(whole) < rfc3339(later));
    }
}
