//! The layout ARCHITECTURE.md describes stays true: every module sits in a
//! folder of the data flow, a folder uses only the folders before it in
//! `FLOW`, and no two modules use each other. Test modules are left out
//! (a kernel's tests may drive it through its caller), and so are comments
//! (doc links are not imports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The folders, in the order the data flows (a folder may use those before it).
const FLOW: [&str; 8] = [
    "math",
    "model",
    "data",
    "likelihood",
    "diagnostics",
    "inference",
    "report",
    "run",
];

/// Every .rs file under `dir`, relative to `root`.
fn sources(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

/// The module a file belongs to: `folder::file` (a folder's `mod.rs` is the
/// folder itself; `inference/sampler/*` is `inference::sampler`, and
/// `run/fit/*` is `run::fit`).
fn module_of(file: &str) -> String {
    let parts: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
    match parts.as_slice() {
        [folder, "mod"] => folder.to_string(),
        [folder, module] => format!("{folder}::{module}"),
        [folder, module, ..] => format!("{folder}::{module}"),
        _ => panic!("{file} is not in a folder"),
    }
}

/// The modules a file's code (not its comments, not its tests) names as
/// `crate::folder::module`.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for piece in line.split("crate::").skip(1) {
            let path: Vec<&str> = piece
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .collect();
            if !FLOW.contains(&path[0]) {
                continue;
            }
            match path.get(1) {
                Some(m) if m.starts_with(|c: char| c.is_ascii_lowercase()) => {
                    out.insert(format!("{}::{m}", path[0]));
                }
                _ => {
                    out.insert(path[0].to_string());
                }
            }
        }
    }
    out
}

#[test]
fn folders_follow_the_data_flow_and_modules_do_not_loop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    files.sort();
    let top: Vec<&String> = files.iter().filter(|f| !f.contains('/')).collect();
    assert_eq!(
        top,
        ["error.rs", "lib.rs"],
        "only lib.rs and error.rs sit at the top"
    );
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in files.iter().filter(|f| f.contains('/')) {
        let folder = file.split('/').next().unwrap();
        let Some(rank) = FLOW.iter().position(|f| f == &folder) else {
            problems.push(format!("{file}: folder '{folder}' is not in the flow {FLOW:?}"));
            continue;
        };
        let module = module_of(file);
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for used in uses(&text) {
            let used_folder = used.split("::").next().unwrap();
            let used_rank = FLOW.iter().position(|f| f == &used_folder).unwrap();
            if used_rank > rank {
                problems.push(format!("{file} uses crate::{used}, a folder after its own"));
            }
            if used != module {
                graph.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    for (a, used) in &graph {
        for b in used {
            if a < b && graph.get(b).is_some_and(|u| u.contains(a)) {
                problems.push(format!("{a} and {b} use each other"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layout (see ARCHITECTURE.md):\n{}",
        problems.join("\n")
    );
    // The scan sees the imports it must: a module known to use another.
    assert!(
        graph["likelihood::fused"].contains("likelihood::log_sum"),
        "{graph:?}"
    );
}
