//! Goal: the commands README.md tells a reader to type keep working, and what it shows them
//! keeps matching what they get.
//!
//! Method: read README.md. The two quickstart commands at its top must be the ones CI runs:
//! the first is run here (through the built binary, as `cargo run --` would) and its report
//! must have the lines, in the order, of the sample report the README shows, with the same
//! outcome and seed (the figures may move with the protocol; a section that appears or
//! vanishes may not); the second must be the test command of `.ci/run`. Every other `ferry`
//! command in a `sh` block is given to the binary with `--help` appended, which makes clap
//! check every subcommand and flag before it prints help, without running anything. Every
//! `--example`, `--bench` and `scenarios/*.yaml` the README names must exist; the examples
//! themselves run in `tests/examples.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The lines of every ```sh block, each with its line number, comments and trailing
/// backslash continuations joined.
fn shell_commands(readme: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let code = line.split(" #").next().unwrap_or_default();
        let code = if code.trim_start().starts_with('#') { "" } else { code };
        let (number, mut text) = pending.take().unwrap_or((index + 1, String::new()));
        text.push_str(code.trim());
        if let Some(stripped) = text.strip_suffix('\\') {
            pending = Some((number, format!("{} ", stripped.trim_end())));
        } else if !text.is_empty() {
            commands.push((number, text));
        }
    }
    commands
}

/// The first ```-fenced block after the line containing `marker`.
fn block_after(readme: &str, marker: &str) -> Vec<String> {
    let after = readme.split_once(marker).map(|(_, rest)| rest).expect("the marker is in README.md");
    after
        .lines()
        .skip_while(|line| !line.starts_with("```"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .map(str::to_owned)
        .collect()
}

/// A report line's label: `outcome:` for `outcome: converged`, `ok converged` for a check, and
/// otherwise the 13-character label column (`virtual time`, `in force`).
fn label(line: &str) -> String {
    let mut words = line.split_whitespace();
    match words.next() {
        Some(first @ ("ok" | "FAILED")) => format!("{first} {}", words.next().unwrap_or_default()),
        Some(first) if first.ends_with(':') => first.to_owned(),
        _ => line.chars().take(13).collect::<String>().trim().to_owned(),
    }
}

fn ferry(arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(arguments)
        .current_dir(root())
        .output()
        .expect("cargo builds the ferry binary before its integration tests");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_quickstart_commands_work_and_ci_runs_them() {
    let readme = readme();
    let commands: Vec<String> = shell_commands(&readme).into_iter().take(2).map(|(_, text)| text).collect();
    assert_eq!(
        commands,
        ["cargo run -- run scenarios/quickstart.yaml", "cargo test --workspace"],
        "README's quickstart changed: update this test, .ci/run and the sample report together"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|line| line == "cargo test --workspace"),
        "`.ci/run` no longer runs the README's tests"
    );

    let (code, stdout, stderr) = ferry(&["run", "scenarios/quickstart.yaml"]);
    assert_eq!(code, 0, "the quickstart scenario failed:\n{stdout}{stderr}");
    let sample = block_after(&readme, "`ferry run` prints a one-screen summary");
    let labels = |lines: &mut dyn Iterator<Item = &str>| lines.map(label).collect::<Vec<_>>();
    assert_eq!(
        labels(&mut sample.iter().map(String::as_str)),
        labels(&mut stdout.lines()),
        "README's sample report has other lines than `ferry run scenarios/quickstart.yaml` prints; \
         paste the current report into README.md:\n{stdout}"
    );
    for line in ["outcome: converged", "seed: 1"] {
        assert!(sample.iter().any(|shown| shown == line), "README's sample report lacks {line:?}");
        assert!(
            stdout.lines().any(|printed| printed == line),
            "the quickstart did not print {line:?}:\n{stdout}"
        );
    }
}

#[test]
fn every_ferry_command_in_the_readme_parses() {
    let readme = readme();
    let mut checked = 0;
    for (line, command) in shell_commands(&readme) {
        let Some(arguments) = ["ferry ", "./target/release/ferry ", "target/release/ferry ", "cargo run -- "]
            .iter()
            .find_map(|program| command.strip_prefix(program))
        else {
            continue;
        };
        // A synopsis (`ferry run FILE [--seed N]`) shows the grammar, not a command.
        if arguments.contains('[')
            || arguments.split_whitespace().any(|word| word == "FILE" || word == "FILE...")
        {
            continue;
        }
        let mut words: Vec<&str> = arguments.split_whitespace().collect();
        words.push("--help");
        let (code, stdout, stderr) = ferry(&words);
        assert!(
            code == 0 && stdout.contains("Usage:"),
            "README.md line {line}: `{command}` does not parse (exit {code}):\n{stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} commands found: did the README's code blocks change format?");
}

#[test]
fn every_example_bench_and_scenario_the_readme_names_exists() {
    let readme = readme();
    let words: Vec<&str> = readme
        .split(|character: char| character.is_whitespace() || matches!(character, '`' | '(' | ')' | ','))
        .collect();
    let exists = |path: &Path| root().join(path).is_file();
    for pair in words.windows(2) {
        match pair {
            ["--example", name] if *name != "NAME" => assert!(
                exists(&Path::new("examples").join(format!("{name}.rs")))
                    || exists(&Path::new("simulator/examples").join(format!("{name}.rs"))),
                "README names example {name}, which does not exist"
            ),
            ["--bench", name] => {
                assert!(exists(&Path::new("benches").join(format!("{name}.rs"))), "README names bench {name}")
            }
            _ => {}
        }
    }
    for word in words {
        let word = word.trim_end_matches(['.', ':', ';']);
        // `scenarios/FILE.yaml`, `scenarios/*.yaml` and `scenarios/my-scenario.yaml` are not files.
        let placeholder = word.contains(|character: char| character.is_ascii_uppercase() || character == '*')
            || word.contains("my-");
        if word.starts_with("scenarios/") && word.ends_with(".yaml") && !placeholder {
            assert!(exists(Path::new(word)), "README names {word}, which does not exist");
        }
    }
}
