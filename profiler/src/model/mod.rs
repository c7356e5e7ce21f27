//! The process table: who ran during the run, under which identity, and what each used.

pub mod cgroups;
pub mod cmdline;
pub mod container_names;
pub mod held_files;
mod identity;
pub mod perf_map;
pub mod pressure;
pub mod report;
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "one table per architecture; only the target's is used"
    )
)]
mod syscall_names;
pub mod table;
pub mod timeline;
pub mod workload;

#[cfg(test)]
pub use identity::read_identity;
pub use identity::{
    Mapping, ProcessIdentity, current_rss_bytes, read_identity_with, workload_of, workload_of_path,
};
pub use table::{Leader, ProcessTable, ProcessUsage};

/// The syscall's name on the architecture this profiler was built for, or `syscall_<nr>`.
pub fn syscall_name(nr: u32) -> String {
    #[cfg(target_arch = "aarch64")]
    let table: &[&str] = &syscall_names::AARCH64;
    #[cfg(not(target_arch = "aarch64"))]
    let table: &[&str] = &syscall_names::X86_64;
    name_in(table, nr)
}

fn name_in(table: &[&str], nr: u32) -> String {
    match table.get(nr as usize) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => format!("syscall_{nr}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn syscall_numbers_have_their_names() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(super::syscall_name(0), "read");
            assert_eq!(super::syscall_name(110), "getppid");
            assert_eq!(super::syscall_name(257), "openat");
        }
        assert_eq!(
            super::name_in(&super::syscall_names::AARCH64, 173),
            "getppid"
        );
        assert_eq!(super::name_in(&super::syscall_names::AARCH64, 56), "openat");
        assert_eq!(super::name_in(&super::syscall_names::X86_64, 1), "write");
        assert_eq!(super::syscall_name(100_000), "syscall_100000");
    }
}
