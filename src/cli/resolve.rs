//! The resolve step between clap's flags and the library's options (ripgrep's low args ->
//! high args): a flag given on the command line wins over the sweep file's setting, and a
//! value that is wrong either way is a usage error naming the flag or the file's key.

use super::args::RunArgs;
use crate::error::InputError;
use crate::sweep::spec::Checkpoints;
use crate::sweep::{RunOptions, SweepFile};

/// `run`'s options: devices and slots from the flags or `[resources]`, the rest from the file.
pub(super) fn run_options(args: &RunArgs, sweep: &SweepFile) -> Result<RunOptions, InputError> {
    let choice = match args.devices.clone() {
        Some(choice) => choice,
        None => sweep.resources.devices.parse().map_err(|e: InputError| {
            InputError::in_file(&args.sweep, e.message).field("resources.devices")
        })?,
    };
    let jobs_per_device = args.jobs_per_device.unwrap_or(sweep.resources.jobs_per_device);
    if jobs_per_device == 0 {
        return Err(InputError::new("must be at least 1").field("--jobs-per-device"));
    }
    Ok(RunOptions {
        db: args.db.clone(),
        devices: choice.resolve(),
        jobs_per_device,
        max_attempts: sweep.resources.max_attempts.max(1),
        shard: args.shard,
        worker_exe: None,
        keep_checkpoints: sweep.resources.checkpoints == Checkpoints::All,
        no_prune: args.no_prune,
    })
}
