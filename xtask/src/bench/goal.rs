//! Benchmarks measured against a goal: one row each (condition, median, goal, met), printed
//! here and returned for the overall table.

/// One measured condition and whether its median meets the goal.
#[derive(Debug, Clone)]
pub struct GoalRow {
    pub condition: String,
    /// Median of the rounds, in `unit`.
    pub median: f64,
    pub unit: &'static str,
    /// The goal in words, e.g. "≤ 3 s".
    pub goal: String,
    pub met: bool,
}

impl GoalRow {
    /// A row whose goal is a median of at most `limit` `unit`.
    pub fn at_most(condition: String, median: f64, unit: &'static str, limit: f64) -> Self {
        Self {
            condition,
            median,
            unit,
            goal: format!("≤ {limit} {unit}"),
            met: median <= limit,
        }
    }
}

impl GoalRow {
    /// A row whose goal is a median under `limit` `unit`.
    pub fn below(condition: String, median: f64, unit: &'static str, limit: f64) -> Self {
        Self {
            condition,
            median,
            unit,
            goal: format!("< {limit} {unit}"),
            met: median < limit,
        }
    }
}

pub fn print(rows: &[GoalRow]) {
    let width = super::name_width(rows.iter().map(|row| row.condition.as_str()));
    println!(
        "{:<width$} {:>12} {:>10} {:>5}",
        "condition", "median", "goal", "met"
    );
    for row in rows {
        println!(
            "{:<width$} {:>12} {:>10} {:>5}",
            row.condition,
            format!("{:.3} {}", row.median, row.unit),
            row.goal,
            if row.met { "yes" } else { "NO" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_median_at_the_limit_meets_it() {
        assert!(GoalRow::at_most("x".to_owned(), 3.0, "s", 3.0).met);
        let over = GoalRow::at_most("x".to_owned(), 3.01, "s", 3.0);
        assert!(!over.met);
        assert_eq!(over.goal, "≤ 3 s");
        assert!(!GoalRow::below("x".to_owned(), 2.0, "s", 2.0).met);
        assert!(GoalRow::below("x".to_owned(), 1.99, "s", 2.0).met);
    }
}
