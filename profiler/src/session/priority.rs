//! The recorder's place in the CPU queue: its ticks, alerts and metrics server run on one thread
//! at a real-time priority a user's nice -20 cannot starve, with a CPU budget; its heavy work
//! (naming stacks, writing windows) runs on threads of the normal policy at nice -20: never
//! above a normal task, and level with the greediest one.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The lowest real-time priority: above every normal task, below every real-time one the
/// host's operators set up.
const PRIORITY: libc::c_int = 1;
/// CPU time the thread may spend at real-time priority without blocking (a tick takes ~5 ms, an
/// incident's probes ~100 ms to load); past it the kernel signals SIGXCPU and the thread goes
/// back to normal priority for the rest of the run.
const BUDGET_US: libc::rlim_t = 500_000;

/// The thread raised, for the SIGXCPU handler: the signal goes to any thread of the process.
static RAISED_TID: AtomicI32 = AtomicI32::new(0);
/// Set by the handler once the budget was overrun.
static OVERRUN: AtomicBool = AtomicBool::new(false);
/// Set once a thread was raised: the session's helper threads take [`HELPER_NICE`].
static HELPERS: AtomicBool = AtomicBool::new(false);
/// The helper threads' nice value under a raised thread.
const HELPER_NICE: libc::c_int = -20;

/// Called first on each helper thread (symbolizer, writer), and on the raised thread for when
/// it is demoted: nice -20 once a thread was raised, so a rogue at nice -20 shares the CPUs
/// with the recorder's heavy work instead of starving it; nothing otherwise.
pub fn helper_thread() {
    if HELPERS.load(Ordering::Relaxed) {
        // SAFETY: gettid has no preconditions; setpriority on our own thread.
        let set = unsafe {
            libc::setpriority(
                libc::PRIO_PROCESS,
                libc::gettid() as libc::id_t,
                HELPER_NICE,
            )
        };
        if set != 0 {
            log::debug!("helper thread nice: {}", std::io::Error::last_os_error());
        }
    }
}

/// Whether the recording thread holds its real-time priority.
pub struct Priority {
    raised: bool,
    /// The overrun was said once.
    told: bool,
}

impl Priority {
    /// Raises the calling thread to `SCHED_FIFO`; threads and processes it starts later get the
    /// normal policy (`SCHED_RESET_ON_FORK`). Says why when it cannot, and stays normal.
    pub fn raise() -> Self {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        RAISED_TID.store(tid, Ordering::Relaxed);
        let raised = match limit_budget().and_then(|()| set(tid, Policy::RealTime)) {
            Ok(()) => {
                HELPERS.store(true, Ordering::Relaxed);
                // What the thread runs at when demoted or released: level with the greediest
                // normal task.
                helper_thread();
                true
            }
            Err(err) => {
                eprintln!(
                    "profiler: warning: ticks and metrics stay at normal priority ({err}): a \
                     rogue that holds every CPU will delay windows and /metrics"
                );
                false
            }
        };
        Self {
            raised,
            told: false,
        }
    }

    /// Says once that the budget was overrun and the thread runs at normal priority since.
    pub fn check(&mut self) {
        if self.raised && !self.told && OVERRUN.load(Ordering::Relaxed) {
            self.told = true;
            eprintln!(
                "profiler: warning: the recording thread spent {} ms of CPU without a pause at \
                 real-time priority; it runs at normal priority from now on",
                BUDGET_US / 1000
            );
        }
    }

    /// Back to normal priority for good: the run is ending.
    pub fn release(self) {
        if self.raised {
            let _ = set(RAISED_TID.load(Ordering::Relaxed), Policy::Normal);
        }
    }
}

#[derive(Clone, Copy)]
enum Policy {
    RealTime,
    Normal,
}

fn set(tid: libc::pid_t, policy: Policy) -> std::io::Result<()> {
    let (policy, priority) = match policy {
        Policy::RealTime => (libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, PRIORITY),
        Policy::Normal => (libc::SCHED_OTHER | libc::SCHED_RESET_ON_FORK, 0),
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param for the duration of the call.
    match unsafe { libc::sched_setscheduler(tid, policy, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sets the soft `RLIMIT_RTTIME` and the SIGXCPU handler that demotes the thread past it.
fn limit_budget() -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = BUDGET_US.min(limit.rlim_max);
    // SAFETY: as above; lowering the soft limit needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a zeroed sigaction is valid; the handler only makes async-signal-safe calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = over_budget as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGXCPU, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// SIGXCPU: the raised thread overran its budget; it goes back to normal priority.
extern "C" fn over_budget(_signal: libc::c_int) {
    OVERRUN.store(true, Ordering::Relaxed);
    let _ = set(RAISED_TID.load(Ordering::Relaxed), Policy::Normal);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of(tid: libc::pid_t) -> libc::c_int {
        // SAFETY: no preconditions.
        unsafe { libc::sched_getscheduler(tid) }
    }

    /// Root only (CAP_SYS_NICE); elsewhere `raise` must leave the thread as it was.
    #[test]
    fn raises_lowers_and_restores_the_calling_thread_only() {
        let handle = std::thread::spawn(|| {
            // SAFETY: no preconditions.
            let tid = unsafe { libc::gettid() };
            let priority = Priority::raise();
            if !priority.raised {
                assert_eq!(policy_of(tid), libc::SCHED_OTHER);
                return;
            }
            let fifo = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
            assert_eq!(policy_of(tid), fifo);
            let child = std::thread::spawn(|| {
                // SAFETY: no preconditions.
                policy_of(unsafe { libc::gettid() })
            });
            assert_eq!(child.join().unwrap(), libc::SCHED_OTHER, "not inherited");
            priority.release();
            assert_eq!(
                policy_of(tid),
                libc::SCHED_OTHER | libc::SCHED_RESET_ON_FORK
            );
        });
        handle.join().unwrap();
    }
}
