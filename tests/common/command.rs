//! Running the real `foldsweep` binary, after ripgrep's `TestCommand`: a failed expectation
//! panics with everything needed to see why without rerunning, namely the command line, the
//! environment it set, the working directory, the files in it, stdout and stderr.

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The foldsweep binary, to run in a directory.
pub struct TestCommand {
    cmd: Command,
    dir: PathBuf,
}

impl TestCommand {
    pub fn new(dir: &Path) -> TestCommand {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_foldsweep"));
        cmd.current_dir(dir);
        default_signals(&mut cmd);
        TestCommand { cmd, dir: dir.to_path_buf() }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Self {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// Runs to the end; the caller checks the outcome (see [`Run`]'s `expect_*`).
    pub fn output(&mut self) -> Run {
        let output = self.cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self));
        Run { output, command: self.to_string(), dir: self.dir.clone() }
    }

    /// Runs to the end and expects exit code 0.
    pub fn run(&mut self) -> Run {
        let run = self.output();
        run.expect_success();
        run
    }

    /// Starts in the background with stdout and stderr piped (read them, or they fill up).
    pub fn spawn(&mut self) -> Child {
        self.spawn_with(Stdio::piped)
    }

    /// Starts in the background with its output discarded.
    pub fn spawn_quiet(&mut self) -> Child {
        self.spawn_with(Stdio::null)
    }

    fn spawn_with(&mut self, stdio: impl Fn() -> Stdio) -> Child {
        self.cmd
            .stdout(stdio())
            .stderr(stdio())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self))
    }
}

/// Starts the child with SIGINT and SIGHUP at their default action, whatever this test process
/// inherited. foldsweep keeps a signal ignored when it starts ignored (nohup, a shell's
/// background job), so the tests that send Ctrl-C or a hangup failed when the suite itself
/// ran under `nohup` or `cmd &`. A test about an ignored signal ignores it in its own command
/// (`nohup`, `sh -c "trap '' INT; exec ..."`), after this reset.
pub fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires; nothing else runs here.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
}

impl std::fmt::Display for TestCommand {
    /// `ENV=value ... program args...`, each word quoted as Debug quotes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (key, value) in self.cmd.get_envs() {
            let value = value.map_or("<removed>".into(), |v| v.to_string_lossy());
            write!(f, "{}={value:?} ", key.to_string_lossy())?;
        }
        write!(f, "{:?}", self.cmd.get_program())?;
        for arg in self.cmd.get_args() {
            write!(f, " {arg:?}")?;
        }
        Ok(())
    }
}

/// A finished command with what is needed to explain it: derefs to its [`Output`].
pub struct Run {
    pub output: Output,
    command: String,
    dir: PathBuf,
}

impl Deref for Run {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    pub fn expect_code(&self, code: i32) -> &Run {
        if self.output.status.code() != Some(code) {
            self.fail(&format!("expected exit code {code}, got {}", self.output.status));
        }
        self
    }

    /// Panics with `what` and the full report.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.report())
    }

    /// Panics with the report unless `condition` holds.
    pub fn check(&self, condition: bool, what: &str) -> &Run {
        if !condition {
            self.fail(what);
        }
        self
    }

    /// The command, the directory and its files, stdout and stderr.
    pub fn report(&self) -> String {
        format!(
            "command: {}\nstatus: {}\ndirectory: {}\nfiles:\n{}\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.output.status,
            self.dir.display(),
            listing(&self.dir),
            indent(&self.stdout()),
            indent(&self.stderr()),
        )
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "    (empty)".into();
    }
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// Every file under `dir` with its size, in name order (at most 200 lines; `target` and
/// hidden folders left out).
pub fn listing(dir: &Path) -> String {
    const MAX: usize = 200;
    let mut lines = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            lines.push(format!("    {} (unreadable)", current.display()));
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                // A test run from the repository root: its build output and .git say nothing.
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else {
                let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                let name = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
                lines.push(format!("    {name} ({size} bytes)"));
            }
        }
    }
    lines.sort();
    if lines.len() > MAX {
        let more = lines.len() - MAX;
        lines.truncate(MAX);
        lines.push(format!("    ... and {more} more"));
    }
    if lines.is_empty() {
        return "    (none)".into();
    }
    lines.join("\n")
}
