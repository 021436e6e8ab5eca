//! Helpers shared by the integration tests: where the reference fixtures live, running the
//! real binary, and comparing numbers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod parity;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `shared/` sits beside the repository (in CI too); FOLDSWEEP_SHARED overrides it.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("FOLDSWEEP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"));
    assert!(dir.join("fixtures").is_dir(), "reference fixtures not found in {} (set FOLDSWEEP_SHARED)", dir.display());
    dir
}

pub fn fixture(path: &str) -> PathBuf {
    shared_dir().join("fixtures").join(path)
}

pub fn sample(path: &str) -> PathBuf {
    repo_root().join("data").join("sample").join(path)
}

/// Runs the real foldsweep binary in `dir`.
pub fn foldsweep(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_foldsweep")).args(args).current_dir(dir).output().expect("run foldsweep")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// float32 against a float64 reference: relative 1e-4, absolute 1e-5 near zero.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f64]) {
    assert_close_tol(what, actual, expected, 1e-4, 1e-5)
}

pub fn assert_close_tol(what: &str, actual: &[f32], expected: &[f64], rel: f64, abs: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a as f64 - e).abs();
        assert!(diff <= abs.max(rel * e.abs()), "{what}[{i}]: got {a}, expected {e} (diff {diff:.3e})");
    }
}

/// Flattens nested JSON number lists into (shape, values).
pub fn flatten(value: &serde_json::Value) -> (Vec<usize>, Vec<f64>) {
    match value {
        serde_json::Value::Array(items) => {
            let parts: Vec<_> = items.iter().map(flatten).collect();
            let mut shape = vec![items.len()];
            if let Some((inner, _)) = parts.first() {
                shape.extend(inner);
            }
            (shape, parts.into_iter().flat_map(|(_, v)| v).collect())
        }
        serde_json::Value::Number(n) => (vec![], vec![n.as_f64().unwrap()]),
        other => panic!("expected numbers, found {other}"),
    }
}

pub fn values(value: &serde_json::Value) -> Vec<f64> {
    flatten(value).1
}
