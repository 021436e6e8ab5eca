//! `foldsweep slurm`: a Slurm job array that runs one shard per array task, and a merge job
//! that runs after all of them (`--dependency=afterany`, so failed shards still get merged).

use std::path::Path;

#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub tasks: usize,
    pub gpus_per_task: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    /// At most this many array tasks at once (Slurm's `%` cap).
    pub max_concurrent: Option<usize>,
    /// Shared output folder for the shard databases, checkpoints and logs.
    pub out_dir: String,
}

/// (array script, merge script). Paths inside are absolute so the scripts run from anywhere.
/// The caller must create `workdir/out_dir` before submitting (see [`create_output_folder`]).
pub fn scripts(
    sweep_path: &Path,
    sweep_name: &str,
    exe: &Path,
    workdir: &Path,
    o: &SlurmOptions,
) -> (String, String) {
    let out_path = workdir.join(&o.out_dir);
    // `#SBATCH --output=` takes the path as it is (checked free of blanks by
    // `create_output_folder`); the shell lines get it quoted.
    let sbatch_out = out_path.display();
    let out_dir = shell_quote(&out_path);
    let (workdir, exe, sweep_path) =
        (shell_quote(workdir), shell_quote(exe), shell_quote(sweep_path));
    let job_name: String = sweep_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    let cap = o.max_concurrent.map_or(String::new(), |c| format!("%{c}"));
    let mut header = format!("#!/bin/bash\n#SBATCH --job-name=foldsweep-{job_name}\n");
    if let Some(p) = &o.partition {
        header += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &o.time {
        header += &format!("#SBATCH --time={t}\n");
    }
    let devices = if o.gpus_per_task > 0 { "auto" } else { "cpu" };
    let gpus = if o.gpus_per_task > 0 {
        format!("#SBATCH --gpus-per-task={}\n", o.gpus_per_task)
    } else {
        String::new()
    };
    let array = format!(
        "{header}#SBATCH --array=1-{n}{cap}\n#SBATCH --ntasks=1\n{gpus}#SBATCH --output={sbatch_out}/slurm-%A_%a.out\n\
         # One shard of the sweep per array task; each writes its own database into the shared\n\
         # output folder (SQLite on a network filesystem must not be shared between machines).\n\
         set -euo pipefail\ncd {workdir}\nmkdir -p {out}\n\
         exec {exe} run {sweep} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --db {out}/shard-${{SLURM_ARRAY_TASK_ID}}.db --devices {devices}\n",
        n = o.tasks,
        out = out_dir,
        sweep = sweep_path,
    );
    let merge = format!(
        "{header}#SBATCH --ntasks=1\n#SBATCH --output={sbatch_out}/slurm-merge-%j.out\n\
         set -euo pipefail\ncd {workdir}\n\
         exec {exe} merge {out}/shard-*.db --into {out}/results.db\n",
        out = out_dir,
    );
    (array, merge)
}

/// Slurm opens a job's `--output` file before the script runs: with the folder missing, every
/// task fails at once ("Could not open stdout file", in slurmd's log only) and the script's
/// own `mkdir -p` never runs. Found by scripts/slurm_check.sh on a real Slurm.
pub fn create_output_folder(
    workdir: &Path,
    o: &SlurmOptions,
) -> Result<(), crate::error::InputError> {
    let out_dir = workdir.join(&o.out_dir);
    if out_dir.to_string_lossy().chars().any(|c| c.is_whitespace() || "'\"\\".contains(c)) {
        return Err(crate::error::InputError::in_file(&out_dir, "Slurm's #SBATCH --output cannot name a folder whose path has blanks or quotes; pick another folder")
            .field("out_dir"));
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        crate::error::InputError::in_file(
            &out_dir,
            format!("cannot create the Slurm output folder: {e}"),
        )
        .field("out_dir")
    })
}

/// The path as one shell word: unchanged when it is plain, otherwise in single quotes (as
/// Python's shlex.quote does), so a folder with a blank or a `$` stays one argument.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments bash passes to the script's `exec` line.
    fn exec_arguments(script: &str) -> Vec<String> {
        let line = script.lines().find(|l| l.starts_with("exec ")).expect("an exec line");
        let print = format!("printf '%s\\n' {}", &line["exec ".len()..]);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(print)
            .env("SLURM_ARRAY_TASK_ID", "2")
            .output()
            .expect("bash");
        String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
    }

    #[test]
    fn paths_with_blanks_and_quotes_stay_one_argument() {
        let workdir = Path::new("/tmp/my work");
        let options = SlurmOptions {
            tasks: 3,
            gpus_per_task: 0,
            partition: None,
            time: None,
            max_concurrent: None,
            out_dir: "out".into(),
        };
        let (array, merge) = scripts(
            &workdir.join("it's a sweep.toml"),
            "grid #1",
            Path::new("/opt/fold sweep/foldsweep"),
            workdir,
            &options,
        );
        assert_eq!(
            exec_arguments(&array),
            [
                "/opt/fold sweep/foldsweep",
                "run",
                "/tmp/my work/it's a sweep.toml",
                "--shard",
                "2/3",
                "--db",
                "/tmp/my work/out/shard-2.db",
                "--devices",
                "cpu"
            ]
        );
        assert!(array.contains("cd '/tmp/my work'\n"), "{array}");
        assert!(array.contains("#SBATCH --job-name=foldsweep-grid__1\n"), "{array}");
        // The glob stays outside the quotes, so bash still expands it.
        assert!(
            merge.contains(
                "merge '/tmp/my work/out'/shard-*.db --into '/tmp/my work/out'/results.db"
            ),
            "{merge}"
        );
    }

    #[test]
    fn an_output_folder_with_blanks_is_refused_by_name() {
        let options = SlurmOptions {
            tasks: 1,
            gpus_per_task: 0,
            partition: None,
            time: None,
            max_concurrent: None,
            out_dir: "sweep out".into(),
        };
        let error = create_output_folder(Path::new("/tmp"), &options).unwrap_err().to_string();
        assert!(
            error.contains("`out_dir`")
                && error.contains("/tmp/sweep out")
                && error.contains("blanks"),
            "{error}"
        );
    }
}
