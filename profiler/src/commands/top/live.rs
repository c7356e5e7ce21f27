//! `top`'s measurements: `record`'s tick pipeline (cumulative read, difference, window, tick
//! report) driven at the refresh interval, with the window renewed so stacks stay recent.

use std::time::{Duration, Instant};

use crate::{
    collect::{Collector, cleanup, cumulative::Cumulative, kernel_now_ns},
    commands::record::window::Window,
    model::cmdline::Cmdlines,
    probes::Probes,
    report::Report,
    symbolize::FoldedStack,
};

/// How much history the hottest stacks cover at most, and how long the process table keeps
/// processes that stopped running: a live view should show what happens now.
const RENEW: Duration = Duration::from_secs(60);

pub struct Live {
    window: Window,
    /// The figures at the previous tick: the next tick's report is the difference.
    last: (Cumulative, Instant, u64),
    frequency_hz: u64,
}

impl Live {
    pub fn start(probes: &Probes, frequency_hz: u64, cmdlines: Cmdlines) -> anyhow::Result<Self> {
        let base = Cumulative::read(&Collector::new(&probes.ebpf))?;
        let started = Instant::now();
        let last = (base.clone(), started, kernel_now_ns());
        let mut window = Window::start_from(
            base,
            (started, jiff::Timestamp::now()),
            probes,
            frequency_hz,
        );
        window.procfs.cmdlines = cmdlines;
        Ok(Self {
            window,
            last,
            frequency_hz,
        })
    }

    /// The report of what happened since the previous tick.
    pub fn tick(&mut self, probes: &mut Probes) -> anyhow::Result<Report> {
        let collector = Collector::new(&probes.ebpf);
        let renew = self.window.elapsed() >= RENEW;
        // The stack maps are only walked when they become the next window's base.
        let now = if renew {
            Cumulative::read(&collector)?
        } else {
            Cumulative::read_without_stacks(&collector)?
        };
        let read_at = Instant::now();
        let now_ns = kernel_now_ns();
        let (before, at, before_ns) = &self.last;
        let elapsed = at.elapsed();
        self.window.observe(&collector, now.processes.clone())?;
        let report =
            self.window
                .tick_report(&collector, &now.since(before), *before_ns, elapsed)?;
        let mut now = now;
        if renew {
            // As record does after each window: the kernel maps keep only live processes and
            // recently sampled stacks, so a long session cannot fill them.
            let stale = cleanup::stale_stacks(&now, &self.window.base);
            cleanup::after_window(&mut probes.ebpf, &mut now, &stale, now_ns)?;
            let procfs = self.window.procfs;
            self.window = Window::start_from(
                now.clone(),
                (read_at, jiff::Timestamp::now()),
                probes,
                self.frequency_hz,
            );
            self.window.procfs = procfs;
        }
        self.last = (now, read_at, now_ns);
        Ok(report)
    }

    /// `pid`'s most sampled stacks since the window started, symbolized.
    pub fn top_stacks(&self, probes: &Probes, pid: u32) -> anyhow::Result<Vec<FoldedStack>> {
        self.window.top_stacks(&Collector::new(&probes.ebpf), pid)
    }
}
