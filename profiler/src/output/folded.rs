//! `stacks.folded`: `comm (pid);frame;...;frame count`, user frames then kernel frames, root
//! first, as perf's stackcollapse and inferno read it.

use std::fmt::Write as _;

use super::ProcessStacks;

/// `;` separates frames and a trailing number is the count, so neither may hide in a name.
fn clean(frame: &str) -> String {
    frame.replace(';', ":").replace(['\n', '\r'], " ")
}

pub fn render(processes: &[ProcessStacks<'_>]) -> String {
    let mut out = String::new();
    for process in processes {
        let root = clean(&format!("{} ({})", process.comm, process.pid));
        for (frames, count) in process.stacks {
            out.push_str(&root);
            for frame in frames {
                out.push(';');
                out.push_str(&clean(frame));
            }
            let _ = writeln!(out, " {count}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_stack_rooted_at_the_process() {
        let stacks = vec![
            (vec!["main".to_owned(), "spin".to_owned()], 7),
            (
                vec![
                    "main".to_owned(),
                    "<[u8; 4]>::f".to_owned(),
                    "sys_write_[k]".to_owned(),
                ],
                2,
            ),
        ];
        let text = render(&[ProcessStacks {
            comm: "burner",
            pid: 42,
            stacks: &stacks,
        }]);
        assert_eq!(
            text,
            "burner (42);main;spin 7\nburner (42);main;<[u8: 4]>::f;sys_write_[k] 2\n"
        );
    }
}
