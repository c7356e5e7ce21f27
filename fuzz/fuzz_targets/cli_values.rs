//! Command-line values parsed by hand: sizes (`--max-disk`) and durations (`--duration`,
//! `--window`, `--interval`, `--retention`, `--on-alert-timeout`). Each stays in its documented
//! bounds, its message is one line, and the value written back in the parser's own syntax
//! parses to the same value.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::{
    parse_bytes, parse_duration, parse_interval, parse_retention, parse_window,
};

fuzz_target!(|text: &str| {
    match parse_bytes(text) {
        Ok(bytes) => {
            assert!(bytes >= 1, "{text:?}");
            assert_eq!(parse_bytes(&bytes.to_string()), Ok(bytes), "{text:?}");
        }
        Err(message) => one_line(text, &message),
    }
    type Parser = fn(&str) -> Result<Duration, String>;
    let bounded: [(Parser, Duration, Duration); 4] = [
        (
            parse_duration,
            Duration::from_millis(100),
            Duration::from_secs(24 * 3600),
        ),
        (
            parse_window,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ),
        (
            parse_interval,
            Duration::from_millis(200),
            Duration::from_secs(24 * 3600),
        ),
        (
            parse_retention,
            Duration::from_secs(1),
            Duration::from_secs(366 * 24 * 3600),
        ),
    ];
    for (parse, min, max) in bounded {
        match parse(text) {
            Ok(duration) => {
                assert!((min..=max).contains(&duration), "{text:?}: {duration:?}");
                let written = humantime::format_duration(duration).to_string();
                assert_eq!(parse(&written), Ok(duration), "{text:?} -> {written:?}");
            }
            Err(message) => one_line(text, &message),
        }
    }
});

fn one_line(text: &str, message: &str) {
    assert!(!message.contains(['\n', '\r']), "{text:?}: {message:?}");
}
