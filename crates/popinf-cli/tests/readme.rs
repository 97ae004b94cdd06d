//! The README stays true: every `popinf` command and flag it names exists
//! (`popinf <command> --help` lists the flag), and its table of run-file
//! keys is exactly the set of keys the run-file parser accepts.

use std::collections::BTreeSet;
use std::process::Command;

const README: &str = include_str!("../../../README.md");

/// Every `popinf ...` command line the README shows: in code blocks
/// (`cargo run --release -- X` counts as `popinf X`; continuation lines
/// joined), and in inline code spans of the prose.
fn commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in README.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            prose.push_str(line);
            prose.push(' ');
            continue;
        }
        let code = line.split(" #").next().unwrap_or("").trim();
        pending.push_str(code.trim_end_matches('\\'));
        pending.push(' ');
        if code.ends_with('\\') {
            continue;
        }
        let full = std::mem::take(&mut pending);
        let full = full.trim();
        if let Some(rest) = full.strip_prefix("cargo run --release -- ") {
            out.push(format!("popinf {rest}"));
        } else if full.starts_with("popinf ") {
            out.push(full.to_string());
        }
    }
    for (k, span) in prose.split('`').enumerate() {
        if k % 2 == 1 && span.starts_with("popinf ") && !span.starts_with("popinf ...") {
            out.push(span.to_string());
        }
    }
    out
}

fn help(words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(words)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`popinf {} --help` failed: {}",
        words.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn flags(text: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for piece in text.split("--").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            flags.push(format!("--{name}"));
        }
    }
    flags
}

fn assert_flags_exist(words: &[&str], named: &[String], context: &str) {
    let text = help(words);
    for flag in named {
        let listed = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == flag);
        assert!(
            listed,
            "README: `{context}` names {flag}, which `popinf {} --help` does not list",
            words.join(" ")
        );
    }
}

#[test]
fn every_command_and_flag_the_readme_names_exists() {
    let commands = commands();
    assert!(commands.len() >= 15, "found only {commands:?}");
    let mut checked = BTreeSet::new();
    for line in &commands {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let Some(&command) = words.first() else { continue };
        let mut path = vec![command];
        if matches!(command, "bench" | "simulate")
            && let Some(&sub) = words.get(1)
        {
            path.push(sub);
        }
        // cargo's own flags come before the `--` that ends them.
        let named = flags(&words[path.len()..].join(" "));
        assert_flags_exist(&path, &named, line);
        checked.insert(path.join(" "));
    }
    for command in [
        "demo",
        "fit",
        "report",
        "graph",
        "diagnose",
        "sbc",
        "simulate smf",
        "bench likelihood",
        "bench fit",
        "bench hierarchical",
    ] {
        assert!(
            checked.contains(command),
            "the README never shows `popinf {command}`: {checked:?}"
        );
    }
    // The demo's options are listed in a paragraph of their own.
    let options = README
        .split("\n\n")
        .find(|p| p.starts_with("Options:"))
        .expect("the README lists the demo's options");
    assert_flags_exist(&["demo"], &flags(options), "Options:");
}

#[test]
fn the_run_file_key_table_is_the_parsers_key_set() {
    let start = README
        .find("**Run file keys**")
        .expect("the README has the run-file key table");
    let end = start
        + README[start..]
            .find("An unknown key is an error")
            .expect("the table ends");
    let mut documented = BTreeSet::new();
    for row in README[start..end].lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        for (k, key) in first.split('`').enumerate() {
            if k % 2 == 1 {
                documented.insert(key.split(".<").next().unwrap().to_string());
            }
        }
    }
    let mut known = BTreeSet::new();
    let sections: Vec<&str> = popinf::run::fit::KNOWN_KEYS.iter().map(|(s, _)| *s).collect();
    for (section, keys) in popinf::run::fit::KNOWN_KEYS {
        for key in *keys {
            if section.is_empty() {
                // A section is documented by its keys; `priors` has free names.
                if !sections.contains(key) {
                    known.insert(key.to_string());
                }
            } else {
                known.insert(format!("{section}.{key}"));
            }
        }
    }
    known.insert("priors".to_string());
    assert_eq!(
        documented, known,
        "README run-file keys (left) vs the parser's (right)"
    );
}
