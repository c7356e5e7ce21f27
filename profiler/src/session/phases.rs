//! Where a diagnose run's wall time goes: one lap per phase, counted from the process's start.

use std::time::Instant;

use crate::report::Phases;

pub struct PhaseClock {
    last: Instant,
    phases: Phases,
}

impl PhaseClock {
    /// Starts the first lap now; the time since the process started is its startup.
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            phases: Phases {
                startup: since_process_start_ms().unwrap_or(0.0),
                ..Phases::default()
            },
        }
    }

    /// Ends the current lap, charging it to the phase `field` picks.
    pub fn lap(&mut self, field: fn(&mut Phases) -> &mut f64) {
        let now = Instant::now();
        *field(&mut self.phases) = round(now.duration_since(self.last).as_secs_f64() * 1e3);
        self.last = now;
    }

    /// The phases so far, and their total.
    pub fn phases(&self) -> Phases {
        let p = self.phases;
        Phases {
            total: round(
                p.startup
                    + p.attach
                    + p.sampling
                    + p.collect
                    + p.detach
                    + p.symbolize
                    + p.analyze
                    + p.render,
            ),
            ..p
        }
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Milliseconds since this process started: /proc gives the start in clock ticks after boot,
/// the boot-time clock gives now.
fn since_process_start_ms() -> Option<f64> {
    let start_ticks = procfs::process::Process::myself()
        .and_then(|p| p.stat())
        .ok()?
        .starttime;
    let start_s = start_ticks as f64 / procfs::ticks_per_second() as f64;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a stack value; CLOCK_BOOTTIME exists since Linux 2.6.39.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let now_s = now.tv_sec as f64 + now.tv_nsec as f64 / 1e9;
    Some(round(((now_s - start_s) * 1e3).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_and_startup_is_since_the_process_began() {
        let mut clock = PhaseClock::start();
        // The test process started before this test ran, and not an hour ago.
        let startup = clock.phases().startup;
        assert!((0.0..3_600_000.0).contains(&startup), "{startup}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        clock.lap(|p| &mut p.attach);
        clock.lap(|p| &mut p.sampling);
        let phases = clock.phases();
        assert!(phases.attach >= 20.0, "{phases:?}");
        assert!(phases.sampling < phases.attach, "{phases:?}");
        assert!((phases.total - (startup + phases.attach + phases.sampling)).abs() < 0.2);
    }
}
