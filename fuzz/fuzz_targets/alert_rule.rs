//! `--alert` rules: parsing never panics, an error is one line, and a rule's canonical text
//! (Display) parses back to the same rule and prints the same again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::fuzzing::Rule;

fuzz_target!(|text: &str| {
    match Rule::parse(text) {
        Ok(rule) => {
            assert!(rule.threshold() >= 0.0, "{text:?}: {rule:?}");
            let canonical = rule.to_string();
            let again = Rule::parse(&canonical)
                .unwrap_or_else(|err| panic!("{text:?} -> {canonical:?}: {err}"));
            assert_eq!(again, rule, "{text:?} -> {canonical:?}");
            assert_eq!(again.to_string(), canonical);
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.contains(['\n', '\r']), "{text:?}: {message:?}");
        }
    }
});
