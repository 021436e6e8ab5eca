//! The layers of ARCHITECTURE.md, enforced: a file in `src/` may name (`crate::...`) only
//! modules of its own layer or below, and no two top-level modules may name each other in a
//! circle. Regression guard for issue 17, where three import circles and twelve upward
//! imports had grown (backend called job, config imported probe, store called report and
//! sweep, sweep imported cli).
//!
//! The test reads the source text, so it needs no tool beyond the test binary. It counts
//! every `crate::module` path, in code, doc links and comments alike: a doc link to a layer
//! above is the same dependency in a reader's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> layer, bottom (1) to top. The one table; ARCHITECTURE.md explains it.
const LAYERS: &[(&str, u8)] = &[
    ("error", 1),
    ("util", 1),
    ("backend", 1),
    ("config", 2),
    ("search", 2),
    ("data", 3),
    ("nn", 4),
    ("text", 5),
    ("cv", 5),
    ("sampling", 5),
    ("probe", 5),
    ("features", 5),
    ("model", 6),
    ("train", 7),
    ("job", 8),
    ("store", 9),
    ("results", 10),
    ("sweep", 11),
    ("report", 12),
    ("serve", 12),
    ("cli", 13),
];

/// Files that belong to the binary (its allocator and `main`) or name the layers (`lib.rs`).
const OUTSIDE_LAYERS: &[&str] = &["lib", "main", "alloc"];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, layer)| *layer)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/store/queue.rs` -> `store`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src_dir()).unwrap();
    let first = relative.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::name` in a text, with its 1-based line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            let tail = &rest[at + "crate::".len()..];
            let name: String =
                tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `$crate::` (macros) and `x::crate::` are not paths of this crate.
            if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | ':')))
                && !name.is_empty()
            {
                found.push((i + 1, name));
            }
            rest = tail;
        }
    }
    found
}

struct Import {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
}

/// Every file of `src/` that belongs to a layer, in path order: (file, its module, its text).
fn layered_sources() -> Vec<(PathBuf, String, String)> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| (module_of(&file), file))
        .filter(|(module, _)| !OUTSIDE_LAYERS.contains(&module.as_str()))
        .map(|(module, file)| {
            let text = std::fs::read_to_string(&file).unwrap();
            (file, module, text)
        })
        .collect()
}

fn imports() -> Vec<Import> {
    let mut out = Vec::new();
    for (file, from, text) in layered_sources() {
        for (line, to) in crate_paths(&text) {
            if to != from {
                out.push(Import { file: file.clone(), line, from: from.clone(), to });
            }
        }
    }
    out
}

#[test]
fn every_module_of_src_has_a_layer() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let unknown: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| !OUTSIDE_LAYERS.contains(&m.as_str()) && layer_of(m).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "modules without a layer: {unknown:?}; add each to LAYERS in tests/architecture.rs and \
         to the table in ARCHITECTURE.md"
    );
}

#[test]
fn no_file_imports_from_a_layer_above_its_own() {
    let upward: Vec<String> = imports()
        .into_iter()
        .filter_map(|i| {
            let (from, to) = (layer_of(&i.from)?, layer_of(&i.to)?);
            (to > from).then(|| {
                format!(
                    "{}:{}: {} (layer {from}) names crate::{} (layer {to})",
                    i.file.strip_prefix(src_dir()).unwrap().display(),
                    i.line,
                    i.from,
                    i.to
                )
            })
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports against the layers of ARCHITECTURE.md (move the code down, or pass the value \
         in from above):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other_in_a_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in imports() {
        edges.entry(i.from).or_default().insert(i.to);
    }
    // A circle passes through some edge a -> b with b reaching a again.
    let reaches = |start: &str, goal: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(m) = stack.pop() {
            if m == goal {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let circles: Vec<String> = edges
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| reaches(b, a))
        .map(|(a, b)| format!("{a} -> {b} -> ... -> {a}"))
        .collect();
    assert!(circles.is_empty(), "import circles between modules:\n{}", circles.join("\n"));
}

#[test]
fn no_file_in_src_is_over_700_lines() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 700 lines; split them by concept:\n{}", long.join("\n"));
}

#[test]
fn the_layer_checker_sees_an_upward_import() {
    // The checker itself must be able to fail: a made-up file text with one upward path.
    let paths = crate_paths("use crate::sweep::run;\n// see crate::report for more\nx::crate::no");
    assert_eq!(paths, vec![(1, "sweep".to_string()), (2, "report".to_string())]);
    assert!(layer_of("sweep") > layer_of("store"));
}

/// The print and exit calls a library file may not make: what the user should hear goes out
/// as an event or a `log` record, and the exit code is the CLI's (issue 17).
const PRINTS_OR_EXITS: &[&str] =
    &["println!", "eprintln!", "print!", "eprint!", "process::exit", "dbg!"];

/// The lines of a file's text that print or exit, above its inline `#[cfg(test)] mod tests`.
fn prints_or_exits(text: &str) -> Vec<(usize, &str)> {
    let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or("");
    code.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| PRINTS_OR_EXITS.iter().any(|call| line.contains(call)))
        .map(|(i, line)| (i + 1, line.trim()))
        .collect()
}

#[test]
fn the_library_neither_prints_nor_exits() {
    let mut found = Vec::new();
    for (file, module, text) in layered_sources() {
        let unit_tests = file.file_stem().is_some_and(|stem| stem == "tests");
        if module == "cli" || unit_tests {
            continue;
        }
        for (line, code) in prints_or_exits(&text) {
            let name = file.strip_prefix(src_dir()).unwrap().display().to_string();
            found.push(format!("{name}:{line}: {code}"));
        }
    }
    assert!(
        found.is_empty(),
        "library code that prints or exits (report an event, log a notice, or return an \
         error instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_print_checker_sees_a_print_outside_tests_only() {
    let text = "fn a() {\n    eprintln!(\"x\");\n}\n// println! in a comment\n#[cfg(test)]\nmod tests {\n    fn b() { println!(\"y\"); }\n}";
    assert_eq!(prints_or_exits(text), vec![(2, "eprintln!(\"x\");")]);
}
