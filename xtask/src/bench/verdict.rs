//! `cargo xtask bench verdict`: how often the verdict names exactly the right suspects. Runs the
//! verdict scenario tests (real workloads under `profiler diagnose`, each asserting its exact
//! suspect set) several times, reads the outcome line each scenario prints, and tallies
//! precision (named suspects that were expected) and recall (expected suspects that were named).

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{
    Context, SubBench, release_test,
    results::{Goal, Row},
};

/// The scenario tests, built by the bench before it runs.
pub const TESTS: [&str; 6] = [
    "verdict_idle",
    "verdict_cpu",
    "verdict_app",
    "verdict_storms",
    "verdict_mem",
    "verdict_io",
];

/// What starts a scenario's outcome line (`profiler_tests::VERDICT_LINE`).
const LINE_PREFIX: &str = "verdict scenario: ";

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Rounds; each runs every scenario once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

impl SubBench for Options {
    const NAME: &'static str = "verdict";
    const WORKLOADS: bool = true;

    fn quick() -> Self {
        Self { runs: 1 }
    }

    fn run(&self, ctx: &Context) -> Result<Vec<Row>> {
        run(ctx, self.runs)
    }
}

type Suspects = BTreeSet<(String, String)>;

/// One scenario's outcome in one round.
struct Outcome {
    scenario: String,
    expected: Suspects,
    named: Suspects,
}

/// Precision, recall and exact sets of one round, in percent.
struct Round {
    precision: f64,
    recall: f64,
    exact: f64,
}

fn run(ctx: &Context, runs: u32) -> Result<Vec<Row>> {
    let mut rounds = Vec::new();
    // Per scenario: rounds run, rounds exact, and what was named wrongly or missed.
    let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for round in 1..=runs {
        let outcomes = round_outcomes(ctx)?;
        for outcome in &outcomes {
            let entry = seen.entry(outcome.scenario.clone()).or_default();
            entry.0 += 1;
            if outcome.named == outcome.expected {
                entry.1 += 1;
            } else {
                misses
                    .entry(outcome.scenario.clone())
                    .or_default()
                    .push(difference(outcome));
            }
        }
        let tally = tally(&outcomes);
        eprintln!(
            "bench verdict: round {round}/{runs}: {} scenarios, precision {:.0} %, recall {:.0} %, exact {:.0} %",
            outcomes.len(),
            tally.precision,
            tally.recall,
            tally.exact
        );
        rounds.push(tally);
    }
    let column = |pick: fn(&Round) -> f64| rounds.iter().map(pick).collect::<Vec<f64>>();
    let scenarios = seen.len();
    let mut precision = Row::measured(
        Options::NAME,
        "precision: named suspects that were expected",
        "%",
        &column(|r| r.precision),
    )
    .with_goal(Goal::Min(100.0));
    precision.note = Some(format!(
        "{scenarios} scenarios a round, {}",
        TESTS.join(", ")
    ));
    let recall = Row::measured(
        Options::NAME,
        "recall: expected suspects that were named",
        "%",
        &column(|r| r.recall),
    )
    .with_goal(Goal::Min(100.0));
    let mut exact = Row::measured(
        Options::NAME,
        "scenarios with their exact suspect set",
        "%",
        &column(|r| r.exact),
    )
    .with_goal(Goal::Min(100.0));
    exact.note = (!misses.is_empty()).then(|| {
        misses
            .iter()
            .map(|(scenario, wrong)| {
                let (ran, _) = seen.get(scenario).copied().unwrap_or_default();
                format!(
                    "{scenario}: {} of {ran} rounds off ({})",
                    wrong.len(),
                    wrong.join("; ")
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    });
    Ok(vec![precision, recall, exact])
}

/// Every scenario test run once; their outcome lines. A test that fails still printed its
/// outcome (the check prints before it asserts); one that printed nothing is an error.
fn round_outcomes(ctx: &Context) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for test in TESTS {
        let executable = release_test(&ctx.target, test)?;
        let output = Command::new(&executable)
            .args(["--nocapture", "--test-threads", "1"])
            .env("PROFILER_BIN", ctx.release("profiler"))
            .env("PROFILER_REQUIRE_BPF", "1")
            .output()
            .with_context(|| format!("could not run {}", executable.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let found: Vec<Outcome> = stderr
            .lines()
            .filter_map(|line| line.strip_prefix(LINE_PREFIX))
            .map(outcome)
            .collect::<Result<_>>()?;
        anyhow::ensure!(
            !found.is_empty(),
            "{test} printed no scenario outcome (did a scenario fail before its check?):\n{}",
            tail(&stderr)
        );
        outcomes.extend(found);
    }
    Ok(outcomes)
}

fn outcome(json: &str) -> Result<Outcome> {
    let value: Value = serde_json::from_str(json).context("a malformed scenario outcome")?;
    let set = |key: &str| -> Suspects {
        value[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let text = |i: usize| pair.get(i)?.as_str().map(str::to_owned);
                Some((text(0)?, text(1)?))
            })
            .collect()
    };
    Ok(Outcome {
        scenario: value["scenario"].as_str().unwrap_or("?").to_owned(),
        expected: set("expected"),
        named: set("named"),
    })
}

/// `named burner cpu; missed toucher mem`.
fn difference(outcome: &Outcome) -> String {
    let show = |set: Vec<&(String, String)>| {
        set.iter()
            .map(|(comm, resource)| format!("{comm} {resource}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let extra: Vec<_> = outcome.named.difference(&outcome.expected).collect();
    let missed: Vec<_> = outcome.expected.difference(&outcome.named).collect();
    let mut parts = Vec::new();
    if !extra.is_empty() {
        parts.push(format!("named {}", show(extra)));
    }
    if !missed.is_empty() {
        parts.push(format!("missed {}", show(missed)));
    }
    parts.join(", ")
}

/// Precision and recall over every suspect of the round (a round that named nothing where
/// nothing was expected is precise and complete), and the share of exact scenarios.
fn tally(outcomes: &[Outcome]) -> Round {
    let named: usize = outcomes.iter().map(|o| o.named.len()).sum();
    let expected: usize = outcomes.iter().map(|o| o.expected.len()).sum();
    let right: usize = outcomes
        .iter()
        .map(|o| o.named.intersection(&o.expected).count())
        .sum();
    let exact = outcomes.iter().filter(|o| o.named == o.expected).count();
    let percent = |part: usize, whole: usize| {
        if whole == 0 {
            100.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    Round {
        precision: percent(right, named),
        recall: percent(right, expected),
        exact: percent(exact, outcomes.len()),
    }
}

/// The last lines of a test's output, for an error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Suspects {
        list.iter()
            .map(|&(c, r)| (c.to_owned(), r.to_owned()))
            .collect()
    }

    #[test]
    fn an_extra_suspect_costs_precision_and_a_missed_one_recall() {
        let outcomes = [
            Outcome {
                scenario: "idle".to_owned(),
                expected: pairs(&[]),
                named: pairs(&[("bash", "spawn")]),
            },
            Outcome {
                scenario: "hog".to_owned(),
                expected: pairs(&[("burner", "cpu"), ("toucher", "mem")]),
                named: pairs(&[("burner", "cpu")]),
            },
            Outcome {
                scenario: "quiet".to_owned(),
                expected: pairs(&[]),
                named: pairs(&[]),
            },
        ];
        let round = tally(&outcomes);
        assert_eq!(
            (round.precision, round.recall),
            (50.0, 50.0),
            "1 right of 2 named, of 2 expected"
        );
        assert!((round.exact - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(difference(&outcomes[0]), "named bash spawn");
        assert_eq!(difference(&outcomes[1]), "missed toucher mem");
    }

    #[test]
    fn outcome_lines_parse_as_the_tests_print_them() {
        let line = r#"{"expected":[["burner","cpu"]],"named":[],"scenario":"threaded hog"}"#;
        let parsed = outcome(line).unwrap();
        assert_eq!(parsed.scenario, "threaded hog");
        assert_eq!(parsed.expected, pairs(&[("burner", "cpu")]));
        assert!(parsed.named.is_empty());
        assert!(outcome("{").is_err());
    }
}
