//! The process table: who ran during the run, under which identity, and what each used.

mod identity;
pub mod table;

pub use identity::Mapping;
#[cfg(test)]
pub use identity::{ProcessIdentity, read_identity};
pub use table::{ProcessTable, ProcessUsage};
