//! Host switches a test sets for its run and puts back after, whatever the test's outcome.

use std::fs;

/// `kernel.task_delayacct` set for a test, restored to what it was when dropped.
pub struct DelayAcctSwitch {
    was: String,
}

impl DelayAcctSwitch {
    pub const PATH: &str = "/proc/sys/kernel/task_delayacct";

    pub fn on() -> Self {
        Self::set("1")
    }

    pub fn off() -> Self {
        Self::set("0")
    }

    fn set(value: &str) -> Self {
        let was = fs::read_to_string(Self::PATH).unwrap_or_else(|err| {
            panic!("{}: {err} (a kernel without delay accounting)", Self::PATH)
        });
        fs::write(Self::PATH, value).unwrap_or_else(|err| panic!("{}: {err}", Self::PATH));
        Self { was }
    }
}

impl Drop for DelayAcctSwitch {
    fn drop(&mut self) {
        let _ = fs::write(Self::PATH, self.was.trim());
    }
}
