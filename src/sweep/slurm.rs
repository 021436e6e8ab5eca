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
pub fn scripts(sweep_path: &Path, sweep_name: &str, exe: &Path, workdir: &Path, o: &SlurmOptions) -> (String, String) {
    let out_dir = workdir.join(&o.out_dir);
    let out_dir = out_dir.display();
    let cap = o.max_concurrent.map_or(String::new(), |c| format!("%{c}"));
    let mut header = format!("#!/bin/bash\n#SBATCH --job-name=foldsweep-{sweep_name}\n");
    if let Some(p) = &o.partition {
        header += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &o.time {
        header += &format!("#SBATCH --time={t}\n");
    }
    let devices = if o.gpus_per_task > 0 { "auto" } else { "cpu" };
    let gpus = if o.gpus_per_task > 0 { format!("#SBATCH --gpus-per-task={}\n", o.gpus_per_task) } else { String::new() };
    let array = format!(
        "{header}#SBATCH --array=1-{n}{cap}\n#SBATCH --ntasks=1\n{gpus}#SBATCH --output={out}/slurm-%A_%a.out\n\
         # One shard of the sweep per array task; each writes its own database into the shared\n\
         # output folder (SQLite on a network filesystem must not be shared between machines).\n\
         set -euo pipefail\ncd {workdir}\nmkdir -p {out}\n\
         exec {exe} run {sweep} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --db {out}/shard-${{SLURM_ARRAY_TASK_ID}}.db --devices {devices}\n",
        n = o.tasks,
        out = out_dir,
        workdir = workdir.display(),
        exe = exe.display(),
        sweep = sweep_path.display(),
    );
    let merge = format!(
        "{header}#SBATCH --ntasks=1\n#SBATCH --output={out}/slurm-merge-%j.out\n\
         set -euo pipefail\ncd {workdir}\n\
         exec {exe} merge {out}/shard-*.db --into {out}/results.db\n",
        out = out_dir,
        workdir = workdir.display(),
        exe = exe.display(),
    );
    (array, merge)
}

/// Slurm opens a job's `--output` file before the script runs: with the folder missing, every
/// task fails at once ("Could not open stdout file", in slurmd's log only) and the script's
/// own `mkdir -p` never runs. Found by scripts/slurm_check.sh on a real Slurm.
pub fn create_output_folder(workdir: &Path, o: &SlurmOptions) -> Result<(), crate::error::InputError> {
    let out_dir = workdir.join(&o.out_dir);
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| crate::error::InputError::in_file(&out_dir, format!("cannot create the Slurm output folder: {e}")).field("--out-dir"))
}
