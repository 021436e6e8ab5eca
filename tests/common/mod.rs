//! Helpers shared by the integration tests: where the reference fixtures live (in the
//! repository, so a bare clone tests itself), running the real binary ([`TestCommand`]: a
//! failure shows the command, its folder's files, stdout and stderr), reading a results
//! database ([`db`]), and comparing numbers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub mod child;
pub mod command;
pub mod db;
pub mod parity;
pub mod predictions;
pub mod process;

pub use command::{Run, TestCommand};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A reference file committed under tests/fixtures (see its README for where each came from).
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(path)
}

pub fn sample(path: &str) -> PathBuf {
    repo_root().join("data").join("sample").join(path)
}

/// Runs the real foldsweep binary in `dir` (the caller checks the outcome).
pub fn foldsweep(dir: &Path, args: &[&str]) -> Run {
    TestCommand::new(dir).args(args).output()
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
        assert!(
            diff <= abs.max(rel * e.abs()),
            "{what}[{i}]: got {a}, expected {e} (diff {diff:.3e})"
        );
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

/// A scratch project folder with a valid config and data that a test then breaks.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// Copies the sample data and writes `config.toml` pointing at it.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in
            ["train_data.json", "test_data.json", "metric_names.json", "metric_name_embeddings.npy"]
        {
            std::fs::copy(sample(name), dir.path().join(name)).expect("copy sample");
        }
        let scratch = Scratch { dir };
        scratch.write("config.toml", QUICK_CONFIG);
        scratch
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), content).expect("write scratch file");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read scratch file")
    }

    /// The foldsweep binary in this folder, to add arguments to.
    pub fn command(&self) -> TestCommand {
        TestCommand::new(self.dir.path())
    }

    /// Runs foldsweep here (the caller checks the outcome).
    pub fn run(&self, args: &[&str]) -> Run {
        self.command().args(args).output()
    }

    /// Runs foldsweep here and expects exit code 0.
    pub fn run_ok(&self, args: &[&str]) -> Run {
        self.command().args(args).run()
    }

    /// `foldsweep train config.toml --fold 0`.
    pub fn train(&self) -> Run {
        self.run(&["train", "config.toml", "--fold", "0", "--out", "out", "--quiet"])
    }

    /// `foldsweep run sweep.toml --db results.db` (the caller checks the outcome).
    pub fn run_sweep(&self) -> Run {
        self.run(&["run", "sweep.toml", "--db", "results.db"])
    }

    /// The scratch folder's results database.
    pub fn db(&self) -> PathBuf {
        self.path("results.db")
    }
}

/// The config ids `foldsweep run sweep.toml --dry-run` prints, in grid order.
pub fn dry_run_ids(s: &Scratch) -> Vec<String> {
    s.run_ok(&["run", "sweep.toml", "--dry-run"])
        .stdout()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.contains('('))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// `foldsweep results --db results.db --format json` plus `extra`, parsed: one row per config.
pub fn results_json(s: &Scratch, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["results", "--db", "results.db", "--format", "json"];
    args.extend(extra);
    let out = s.run_ok(&args);
    match serde_json::from_str(&out.stdout()) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => out.fail("results --format json is not a JSON list"),
    }
}

/// A scratch folder whose `sweep.toml` is `sweep`.
pub fn scratch_with_sweep(sweep: &str) -> Scratch {
    let s = Scratch::new();
    s.write("sweep.toml", sweep);
    s
}

/// Copies a folder tree (a model folder a test then edits).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // Written, not copied: a copy keeps a packaged file's read-only bit.
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

/// The `data`, `text` and `cv` sections over the sample files in a scratch folder.
macro_rules! data_sections {
    () => {
        r#"
[data]
train = "train_data.json"
test = "test_data.json"
metric_names = "metric_names.json"
metric_embeddings = "metric_name_embeddings.npy"

[text]
encoder = "hashing"
dim = 64

[cv]
folds = 5
seed = 42
"#
    };
}

/// [`data_sections!`] for tests that build their text with `format!`.
pub const DATA_SECTIONS: &str = data_sections!();

/// A small, fast training config (for `foldsweep train`).
pub const QUICK_CONFIG: &str = concat!(
    data_sections!(),
    r#"
[train]
model = "standard"
loss = "hybrid"
hidden_dims = [16]
bilinear_rank = 4
epochs = 2
lr = 3e-3
"#
);

/// A sweep of two valid configs (standard+hybrid, ordinal+ordinal) x 5 folds that runs in
/// seconds; two invalid model/loss pairs are dropped.
pub const TINY_SWEEP: &str = concat!(
    "\nname = \"tiny\"\n",
    data_sections!(),
    r#"
[train]
hidden_dims = [8]
bilinear_dim = 8
bilinear_rank = 4
batch_size = 64
lr = 3e-3
epochs = 3
synthetic = { ratio = 0.3, score_min = 0, score_max = 3 }

[grid]
model = ["standard", "ordinal"]
loss = ["hybrid", "ordinal"]

[resources]
devices = "cpu"
jobs_per_device = 2
max_attempts = 2
checkpoints = "all"
"#
);

/// The bytes of a .npy file (format 1.0) with any dtype description.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Asserts exit code 2, no panic, and that stderr mentions every given fragment.
pub fn assert_bad_input(run: &Run, fragments: &[&str]) {
    run.expect_code(2);
    let err = run.stderr();
    run.check(!err.contains("panicked"), "panicked");
    for fragment in fragments {
        run.check(err.contains(fragment), &format!("stderr lacks {fragment:?}"));
    }
}
