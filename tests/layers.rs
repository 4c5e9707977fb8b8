//! The layers of the source tree, checked from the source: each layer imports only the layers
//! below it, and no two source files import each other, directly or round a longer cycle.
//!
//! References are read from `crate::…`, `super::…` and `self::…` paths outside comments
//! (unit tests included).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// What each top-level module may import besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("faults", &[]),
    ("aws", &[]),
    ("model", &[]),
    ("storage", &["model", "aws", "faults"]),
    ("planning", &["model", "storage"]),
    ("executor", &["model", "storage", "aws"]),
    ("report", &["model", "planning"]),
    (
        "pass",
        &["model", "storage", "planning", "executor", "faults"],
    ),
    (
        "cli",
        &[
            "model", "storage", "planning", "executor", "pass", "aws", "report",
        ],
    ),
    (
        "controller",
        &[
            "model", "storage", "planning", "executor", "pass", "aws", "faults",
        ],
    ),
];

/// Source files below `src/`, as module paths (`pass::decide`) with their text.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(SRC), &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs") && !f.ends_with("lib.rs"))
        .map(|f| {
            let relative = f.strip_prefix(SRC).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            (parts.join("::"), std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// The text of a file without comments.
fn code(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file refers to, resolved to the longest module path that is a file.
fn references(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let parent: Vec<&str> = module.split("::").collect();
    let code = code(text);
    let tests_from = code.find("#[cfg(test)]\nmod tests {");
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", parent[..parent.len() - 1].to_vec()),
        ("self::", parent.clone()),
    ] {
        for (at, _) in code.match_indices(prefix) {
            // `crate::` inside a longer word (`simseries_crate::`) is not a path.
            if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            // In the file's unit tests (`mod tests { use super::*; }`), `super` is the file.
            if prefix == "super::" && tests_from.is_some_and(|from| at > from) {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .filter(|p| !p.is_empty())
                .collect();
            // `use super::{a, b}` and `crate::{…}` name several; take the common prefix.
            let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            full.extend(path.iter().map(|s| s.to_string()));
            while !full.is_empty() && !known.contains(&full.join("::")) {
                full.pop();
            }
            if !full.is_empty() && full.join("::") != module {
                out.insert(full.join("::"));
            }
        }
        // Braced groups after a path: `use super::{child::X, launcher::Y}`.
        for (at, _) in code.match_indices(&format!("{prefix}{{")) {
            if prefix == "super::" && tests_from.is_some_and(|from| at > from) {
                continue;
            }
            let group = &code[at + prefix.len() + 1..];
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                full.extend(
                    item.trim()
                        .split("::")
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                );
                while !full.is_empty() && !known.contains(&full.join("::")) {
                    full.pop();
                }
                if !full.is_empty() && full.join("::") != module {
                    out.insert(full.join("::"));
                }
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, text)| (module.clone(), references(module, text, &known)))
        .collect()
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, refs) in graph() {
        let own = layer(&module);
        let may = allowed
            .get(own)
            .unwrap_or_else(|| panic!("src/{own} is not a known layer; add it to ALLOWED"));
        for target in refs {
            let theirs = layer(&target);
            if theirs != own && !may.contains(&theirs) {
                wrong.push(format!("{module} imports {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_source_file_is_in_an_import_cycle() {
    let graph = graph();
    // Depth-first search; a back edge closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            cycles.push(cycle.join(" -> "));
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_imports() {
    // The checks above are only as good as the reading of references: make sure it finds the
    // imports it must find, so an empty graph cannot pass them.
    let graph = graph();
    let decide = &graph["pass::decide"];
    assert!(decide.contains("model::status"), "{decide:?}");
    assert!(decide.contains("model::outcome"), "{decide:?}");
    let local = &graph["executor::local"];
    assert!(local.contains("executor::local::child"), "{local:?}");
    assert!(local.contains("executor"), "{local:?}");
}
