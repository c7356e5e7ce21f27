//! Unwinding user stacks without frame pointers: tables compiled from each object's call frame
//! information, kept in kernel maps for the sampler's stack walker.

mod process;
pub mod rows;
mod store;
mod worker;

pub use worker::{StatsHandle, Unwinder};
