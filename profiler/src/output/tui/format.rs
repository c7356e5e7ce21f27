//! Short human figures for narrow table cells: rates, sizes and per-second waits.

/// Bytes with a binary suffix in at most six characters, e.g. `512`, `1.5K`, `23M`, `4.0G`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut value = value.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0}")
    } else if value < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

/// A count per second with a decimal suffix, e.g. `950`, `12k`, `3.4M`.
pub fn rate(value: f64) -> String {
    let value = value.max(0.0);
    if value < 1_000.0 {
        format!("{value:.0}")
    } else if value < 10_000.0 {
        format!("{:.1}k", value / 1e3)
    } else if value < 1e6 {
        format!("{:.0}k", value / 1e3)
    } else {
        format!("{:.1}M", value / 1e6)
    }
}

/// A figure that is missing because its signal is off or unavailable, not because it is zero.
pub const MISSING: &str = "-";

pub fn optional(value: Option<f64>, show: fn(f64) -> String) -> String {
    value.map_or_else(|| MISSING.to_owned(), show)
}

pub fn cores(value: f64) -> String {
    format!("{value:.2}")
}

/// Run-queue wait in milliseconds per second: 1000 means a thread waited the whole second.
pub fn wait(ms_per_s: f64) -> String {
    if ms_per_s < 10.0 {
        format!("{ms_per_s:.1}")
    } else {
        format!("{ms_per_s:.0}")
    }
}

/// Nanoseconds as a short duration, e.g. `850us`, `12.3ms`, `1.2s`.
pub fn duration_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e6 {
        format!("{:.0}us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1}ms", ns / 1e6)
    } else {
        format!("{:.1}s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_fit_narrow_cells() {
        assert_eq!(bytes(512.0), "512");
        assert_eq!(bytes(1536.0), "1.5K");
        assert_eq!(bytes(23.0 * 1024.0 * 1024.0), "23M");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(12_345.0), "12k");
        assert_eq!(rate(3_400_000.0), "3.4M");
        assert_eq!(wait(2.345), "2.3");
        assert_eq!(duration_ns(12_300_000), "12.3ms");
        assert_eq!(optional(None, bytes), "-");
    }
}
