//! The verdict scenarios' one check: the exact set of suspects a report names (an extra one
//! fails as a missing one does), each outcome printed as one line for `cargo xtask bench
//! verdict` to tally precision and recall over many runs.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::array;

/// What starts the outcome line on stderr; the JSON after it has `scenario`, `expected` and
/// `named`, each suspect as `[comm, resource]`.
pub const VERDICT_LINE: &str = "verdict scenario: ";

/// Every suspect of `report` as (command name, resource); an application's is its name.
pub fn named_suspects(report: &Value) -> BTreeSet<(String, String)> {
    array(report, "suspects")
        .iter()
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
            (text("comm"), text("resource"))
        })
        .collect()
}

/// Asserts that `report` names exactly the suspects `expected` ((comm, resource) pairs), after
/// printing the outcome line.
pub fn assert_exact_suspects(scenario: &str, report: &Value, expected: &[(&str, &str)]) {
    let expected: BTreeSet<(String, String)> = expected
        .iter()
        .map(|&(comm, resource)| (comm.to_owned(), resource.to_owned()))
        .collect();
    let named = named_suspects(report);
    let outcome = json!({"scenario": scenario, "expected": expected, "named": named});
    eprintln!("{VERDICT_LINE}{outcome}");
    assert_eq!(
        named,
        expected,
        "scenario `{scenario}`: named suspects (left) against the exact set expected (right):\n{}",
        report["verdict"].as_str().unwrap_or_default()
    );
}
