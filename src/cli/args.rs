//! The command line as clap types: every subcommand and flag, with its help text. Parsed here
//! and resolved into the library's option structs by the commands (see `resolve`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backend::{Device, DeviceChoice};
use crate::config::Precision;
use crate::report::OutputFormat;
use crate::results::{Criterion, SortKey};
use crate::sweep::shard::Shard;

/// `compare`'s output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum CompareFormat {
    Table,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "foldsweep",
    version,
    about = "Hyperparameter sweeps with k-fold cross-validation for embedding-pair regression",
    long_about = "Hyperparameter sweeps with k-fold cross-validation for embedding-pair regression \
                  (metric embedding x multilingual text -> 0-10 score), built for the DA5401 \
                  metric-learning challenge.\n\nExit codes: 0 success, 1 failure (some jobs failed, \
                  or an I/O or internal error), 2 bad input or usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run a sweep: every config of the grid on every fold, results in the database.
    /// Rerunning resumes: finished jobs are skipped, failed and interrupted ones rerun.
    Run(RunArgs),
    /// The results table: one row per config, best first.
    Results(ResultsArgs),
    /// What happened overnight, per sweep: when it ran, jobs by status, failures grouped by
    /// error, the best config so far, checkpoint disk use, and whether a coordinator runs it
    /// now. Read-only: safe while a sweep runs.
    Status(StatusArgs),
    /// One config in detail: per-fold rows, per-score RMSE, learning curves.
    Show(ShowArgs),
    /// Which differences are real: every config against the best (or a baseline).
    Compare(CompareArgs),
    /// Write a submission CSV from a config's fold ensemble.
    Export(ExportArgs),
    /// One self-contained HTML report of a sweep (tables and inline SVG charts).
    Report(ReportArgs),
    /// A live, read-only view of the results database in the browser (pages and a JSON API).
    Serve(ServeArgs),
    /// Train and evaluate one config on one fold.
    Train(TrainArgs),
    /// Encode texts with a sentence-transformers model folder into a float32 .npy.
    Embed(EmbedArgs),
    /// SimCSE fine-tuning of a sentence-transformers model on texts; writes a model folder.
    Finetune(FinetuneArgs),
    /// Combine shard databases (from `run --shard`) into one.
    Merge(MergeArgs),
    /// Write a Slurm job array (one shard per task) and a dependent merge job.
    Slurm(SlurmArgs),
    /// Seconds per training epoch of the report's model on random data, on any device
    /// (the GPU check; `cargo bench --bench epoch` is the CPU version).
    #[command(hide = true)]
    BenchEpoch(BenchEpochArgs),
    /// Internal: run one job of a sweep (started by `run`).
    #[command(hide = true)]
    Worker { job_file: PathBuf },
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Sweep file (TOML): the config sections plus `name`, `[grid]` and `[resources]`.
    pub(super) sweep: PathBuf,
    /// Results database (created if missing).
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    /// Where jobs run: auto (every GPU, else the CPU), cpu, or a list like cuda:0,cuda:2
    /// [default: the sweep's resources.devices].
    #[arg(long)]
    pub(super) devices: Option<DeviceChoice>,
    /// Jobs run at once on each device [default: the sweep's resources.jobs_per_device].
    #[arg(long)]
    pub(super) jobs_per_device: Option<usize>,
    /// Print the search plan and run nothing: for a grid the configs (only the keys that vary),
    /// the dropped model/loss pairs and the job count; for random and tpe the space, the
    /// trials, the seed and the sampler and pruner settings.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Run only shard I of N (1-based) into its own database; combine shards with `merge`. A
    /// grid: a deterministic balanced slice of the jobs. Random and tpe: the shard's own stream
    /// of trials (seeded by the seed and I, its share of `trials`).
    #[arg(long, value_name = "I/N")]
    pub(super) shard: Option<Shard>,
    /// Rerun the jobs a pruner stopped, to their end, and prune nothing in this run.
    #[arg(long)]
    pub(super) no_prune: bool,
    /// After SIGINT (Ctrl-C), SIGHUP or SIGTERM, or at the deadline, how long running jobs may
    /// go on before they are interrupted (a second signal stops them at once). Slurm waits
    /// KillWait (30 s by default) between SIGTERM and SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_grace)]
    pub(super) grace: Duration,
    /// Stop after this long (90m, 8h, 20s): no job starts that would end past it (see
    /// --deadline-policy), running jobs get --grace, the rest stay pending for the next run
    /// [default: the sweep's resources.time_budget, else none].
    #[arg(long, value_name = "DURATION", value_parser = parse_budget, conflicts_with = "until")]
    pub(super) time_budget: Option<Duration>,
    /// Stop at this local time (HH:MM; the next such time), as --time-budget does.
    #[arg(long, value_name = "HH:MM", value_parser = crate::sweep::deadline::until)]
    pub(super) until: Option<Duration>,
    /// Before the deadline: start only jobs expected to finish in time (fit, from the
    /// sweep's finished jobs), or every job until the deadline itself (start).
    #[arg(long, value_enum, default_value_t = DeadlineChoice::Fit)]
    pub(super) deadline_policy: DeadlineChoice,
    /// How long a database write that fails (busy past the timeout, a full disk, an I/O
    /// error) is retried before the run stops launching jobs.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_budget)]
    pub(super) store_retry: Duration,
}

/// `--deadline-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum DeadlineChoice {
    Fit,
    Start,
}

fn parse_budget(text: &str) -> Result<Duration, String> {
    crate::sweep::deadline::parse_duration(text)
}

/// A grace period may be 0 (interrupt at once).
fn parse_grace(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "0" | "0s" => Ok(Duration::ZERO),
        other => crate::sweep::deadline::parse_duration(other),
    }
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    /// One sweep [default: every sweep in the database].
    #[arg(long)]
    pub(super) sweep: Option<String>,
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub(super) format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(super) struct BenchEpochArgs {
    #[arg(long, default_value = "cpu")]
    pub(super) device: Device,
    /// Reduced precision (bf16, f16) on a GPU only.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub(super) precision: Precision,
    #[arg(long, default_value_t = 0)]
    pub(super) rank: usize,
    #[arg(long)]
    pub(super) max_steps: Option<usize>,
}

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    /// Sweep name [default: the most recently run sweep].
    #[arg(long)]
    pub(super) sweep: Option<String>,
    /// Output HTML file.
    #[arg(long, default_value = "report.html")]
    pub(super) out: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    /// IP address and port to listen on; any address but loopback requires a token.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub(super) addr: std::net::SocketAddr,
    /// Access token [default: a new one, printed in the link, on every address].
    #[arg(long)]
    pub(super) token: Option<crate::serve::auth::Token>,
    /// No token: on a loopback address only (anything else refuses to start). Any local
    /// user, and any program of yours, can then read the results.
    #[arg(long, conflicts_with = "token")]
    pub(super) no_token: bool,
    /// One more Host name to answer to (repeatable), e.g. the name a tunnel or proxy uses;
    /// the bound address, localhost, 127.0.0.1 and [::1] always are. Others get 403.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub(super) allow_host: Vec<String>,
    /// Requests served at once, 1 to 64 (each with its own read-only database connection).
    #[arg(long, default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub(super) workers: usize,
}

#[derive(Debug, Args)]
pub(super) struct EmbedArgs {
    /// Model folder (config.json, tokenizer.json, model.safetensors, modules.json, ...).
    #[arg(long)]
    pub(super) model: PathBuf,
    /// A JSON list of strings (each encoded as it is) or a challenge records file (each
    /// record's combined text).
    #[arg(long)]
    pub(super) input: PathBuf,
    /// Output .npy (float32, one row per input, in input order).
    #[arg(long)]
    pub(super) out: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub(super) batch_size: usize,
}

#[derive(Debug, Args)]
pub(super) struct FinetuneArgs {
    #[arg(long)]
    pub(super) model: PathBuf,
    /// JSON files of texts: lists of strings or challenge records files (train and test).
    #[arg(long, num_args = 1.., required = true)]
    pub(super) texts: Vec<PathBuf>,
    /// Output model folder (same format, loadable by sentence-transformers too).
    #[arg(long)]
    pub(super) out: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub(super) epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub(super) batch_size: usize,
    #[arg(long, default_value_t = 2e-5)]
    pub(super) lr: f64,
}

#[derive(Debug, Args)]
pub(super) struct MergeArgs {
    /// Shard databases.
    #[arg(required = true)]
    pub(super) shards: Vec<PathBuf>,
    /// The database to merge into (created if missing).
    #[arg(long)]
    pub(super) into: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct SlurmArgs {
    pub(super) sweep: PathBuf,
    /// Array tasks (= shards).
    #[arg(long)]
    pub(super) tasks: usize,
    /// GPUs per task (0 = CPU jobs).
    #[arg(long, default_value_t = 0)]
    pub(super) gpus_per_task: usize,
    #[arg(long)]
    pub(super) partition: Option<String>,
    /// Time limit per task, in Slurm's format (e.g. 12:00:00).
    #[arg(long)]
    pub(super) time: Option<String>,
    /// At most this many array tasks at once.
    #[arg(long)]
    pub(super) max_concurrent: Option<usize>,
    /// Shared output folder for shard databases, checkpoints and logs.
    #[arg(long, default_value = "sweep-out")]
    pub(super) out_dir: String,
    /// The array script; the merge script is written beside it as <name>.merge.sbatch.
    #[arg(long, default_value = "job.sbatch")]
    pub(super) out: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct ResultsArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    /// Sweep name [default: the most recently run sweep].
    #[arg(long)]
    pub(super) sweep: Option<String>,
    /// Sort by pooled out-of-fold RMSE (oof), mean fold RMSE (mean), macro RMSE (macro), and
    /// with validation probes the probe rows' RMSE (probe) or the shifted RMSE (shifted)
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    pub(super) sort: Option<SortKey>,
    /// Show only the best N configs.
    #[arg(long)]
    pub(super) top: Option<usize>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub(super) format: OutputFormat,
    /// Also list the configs that left the sweep's definition (marked retired), after the
    /// current ones.
    #[arg(long)]
    pub(super) all: bool,
    /// On a terminal, every column at full width: mean ± sd over the folds and the RMSE per
    /// true score (@0 ... @10) too. Piped output always has them.
    #[arg(long, alias = "per-score")]
    pub(super) wide: bool,
}

#[derive(Debug, Args)]
pub(super) struct ShowArgs {
    /// A config id as printed by `results`.
    pub(super) config_id: String,
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct CompareArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    #[arg(long)]
    pub(super) sweep: Option<String>,
    /// Compare against this config instead of the best by the criterion compared.
    #[arg(long)]
    pub(super) baseline: Option<String>,
    /// What is compared: per-fold RMSE (oof), macro RMSE (macro) or shifted RMSE (shifted);
    /// the reference is the best config by the same criterion, pooled
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    pub(super) by: Option<Criterion>,
    /// The old spelling of `--by macro`.
    #[arg(long, hide = true, conflicts_with = "by")]
    pub(super) by_macro: bool,
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub(super) format: CompareFormat,
}

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    #[arg(long, default_value = "results.db")]
    pub(super) db: PathBuf,
    #[arg(long)]
    pub(super) sweep: Option<String>,
    /// The config to export.
    #[arg(long, conflicts_with = "best")]
    pub(super) config: Option<String>,
    /// Export the best config (by --by).
    #[arg(long)]
    pub(super) best: bool,
    /// What "best" means: pooled OOF RMSE (oof), macro RMSE (macro) or shifted RMSE (shifted)
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    pub(super) by: Option<Criterion>,
    /// Export a greedy ensemble of N rounds over the sweep's complete configs instead of one
    /// config (forward selection with replacement on out-of-fold and probe rows, by --by).
    #[arg(long, value_name = "N", conflicts_with_all = ["config", "best"])]
    pub(super) ensemble: Option<usize>,
    /// Test records [default: the config's data.test].
    #[arg(long)]
    pub(super) test: Option<PathBuf>,
    /// Precomputed text embeddings of the --test records (row i for record i); required with
    /// --test when the config's text.encoder is "precomputed".
    #[arg(long, requires = "test")]
    pub(super) test_embeddings: Option<PathBuf>,
    /// Output CSV (ID,score).
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Round the averaged scores to whole scores. Off by default: on the sample data's test
    /// labels rounding raised the RMSE of 5 of 8 configs (see the README).
    #[arg(long, conflicts_with = "no_round")]
    pub(super) round: bool,
    /// Keep the averaged scores (the default).
    #[arg(long)]
    pub(super) no_round: bool,
    /// Export even when some folds are not finished.
    #[arg(long)]
    pub(super) allow_partial: bool,
}

#[derive(Debug, Args)]
pub(super) struct TrainArgs {
    /// Config file (TOML) with the sections `data`, `text`, `cv` and `train` of a sweep file.
    /// Relative paths inside it are relative to the current directory.
    pub(super) config: PathBuf,
    /// Validation fold, 0-based (0 .. cv.folds - 1); the other folds train.
    #[arg(long)]
    pub(super) fold: usize,
    /// Output folder for result.json and the best epoch's checkpoint
    /// [default: runs/<config name>/fold<K>].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Print only the final summary, not a line per epoch.
    #[arg(long)]
    pub(super) quiet: bool,
    /// cpu or cuda:N (a GPU build).
    #[arg(long, default_value = "cpu")]
    pub(super) device: Device,
}
