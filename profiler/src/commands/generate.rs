//! `profiler generate`: the man pages and shell completions a package installs, made from the
//! command-line definition itself so they never drift from `--help`.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, Generated};

pub fn run(what: &Generated) -> anyhow::Result<()> {
    let mut out = Vec::new();
    match what {
        Generated::Man { subcommand } => man(subcommand.as_deref(), &mut out)?,
        Generated::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "profiler", &mut out);
        }
    }
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("writing to stdout")
}

/// `profiler(1)`, or `profiler-<subcommand>(1)` with the subcommand's own options.
fn man(subcommand: Option<&str>, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let root = Cli::command();
    let page = match subcommand {
        None => root,
        Some(name) => {
            let sub = root
                .get_subcommands()
                .find(|c| c.get_name() == name && !c.is_hide_set())
                .with_context(|| {
                    format!("no subcommand {name:?}; one of {}", names(&root).join(", "))
                })?
                .clone();
            // The page's title and NAME line: `profiler-diagnose`, as man(1) finds it.
            sub.name(format!("profiler-{name}"))
        }
    };
    clap_mangen::Man::new(page)
        .render(out)
        .context("rendering the man page")
}

/// The subcommands a package has pages for.
pub fn names(root: &clap::Command) -> Vec<String> {
    root.get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_page_named_for_man_and_an_unknown_one_is_refused() {
        let root = Cli::command();
        assert_eq!(
            names(&root),
            ["diagnose", "doctor", "record", "top", "flamegraph"]
        );
        for name in names(&root) {
            let mut page = Vec::new();
            man(Some(&name), &mut page).unwrap();
            let page = String::from_utf8(page).unwrap();
            assert!(page.contains(&format!("\n.TH profiler-{name} 1")), "{page}");
        }
        let mut page = Vec::new();
        man(None, &mut page).unwrap();
        assert!(
            String::from_utf8(page)
                .unwrap()
                .contains("profiler\\-diagnose")
        );
        let err = man(Some("generate"), &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().starts_with("no subcommand \"generate\""),
            "{err}"
        );
    }
}
