//! Library target so `profiler` can name this crate as a build dependency (aya-build's rebuild hook).
#![no_std]
