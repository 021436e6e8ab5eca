//! The command line: argument parsing, progress output and exit codes. Thin on purpose:
//! all real work lives in the library modules.

mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::backend::{Device, DeviceChoice};
use crate::config::{Config, Precision};
use crate::error::{Error, InputError};
pub use crate::error::{EXIT_BAD_INPUT, EXIT_FAILED};
use crate::job::{FoldResult, TrainingData};
use crate::report::{self, OutputFormat};
use crate::results::{self, ConfigSummary, Criterion, Retired, SortKey};
use crate::store::Store;
use crate::sweep::shard::Shard;
use crate::sweep::{RunOptions, SweepFile};
use crate::train::EpochLog;

/// What a command returns: its exit code, or the error that decides one.
type CommandResult = Result<ExitCode, Error>;

/// `compare`'s output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompareFormat {
    Table,
    Json,
}

/// Library errors name the concept (`fold`); on the command line it is a flag (`--fold`).
const FLAGS: &[(&str, &str)] = &[
    ("fold", "--fold"),
    ("config", "--config"),
    ("test", "--test"),
    ("test_embeddings", "--test-embeddings"),
    ("baseline", "--baseline"),
    ("sweep", "--sweep"),
    ("device", "--device"),
    ("devices", "--devices"),
    ("out_dir", "--out-dir"),
    ("precision", "--precision"),
];

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
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a sweep: every config of the grid on every fold, results in the database.
    /// Rerunning resumes: finished jobs are skipped, failed and interrupted ones rerun.
    Run(RunArgs),
    /// The results table: one row per config, best first.
    Results(ResultsArgs),
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
struct RunArgs {
    /// Sweep file (TOML): the config sections plus `name`, `[grid]` and `[resources]`.
    sweep: PathBuf,
    /// Results database (created if missing).
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    /// Where jobs run: auto (every GPU, else the CPU), cpu, or a list like cuda:0,cuda:2
    /// [default: the sweep's resources.devices].
    #[arg(long)]
    devices: Option<DeviceChoice>,
    /// Jobs run at once on each device [default: the sweep's resources.jobs_per_device].
    #[arg(long)]
    jobs_per_device: Option<usize>,
    /// Print the search plan and run nothing: for a grid the configs (only the keys that vary),
    /// the dropped model/loss pairs and the job count; for random and tpe the space, the
    /// trials, the seed and the sampler and pruner settings.
    #[arg(long)]
    dry_run: bool,
    /// Run only shard I of N (1-based) into its own database; combine shards with `merge`. A
    /// grid: a deterministic balanced slice of the jobs. Random and tpe: the shard's own stream
    /// of trials (seeded by the seed and I, its share of `trials`).
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Rerun the jobs a pruner stopped, to their end, and prune nothing in this run.
    #[arg(long)]
    no_prune: bool,
}

#[derive(Debug, Args)]
struct BenchEpochArgs {
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Reduced precision (bf16, f16) on a GPU only.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    #[arg(long, default_value_t = 0)]
    rank: usize,
    #[arg(long)]
    max_steps: Option<usize>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    /// Sweep name [default: the most recently run sweep].
    #[arg(long)]
    sweep: Option<String>,
    /// Output HTML file.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    /// IP address and port to listen on; any address but loopback requires a token.
    #[arg(long, default_value = "127.0.0.1:8765")]
    addr: std::net::SocketAddr,
    /// Access token [default: none on loopback, generated and printed elsewhere].
    #[arg(long)]
    token: Option<crate::serve::auth::Token>,
    /// Requests served at once, 1 to 64 (each with its own read-only database connection).
    #[arg(long, default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    workers: usize,
}

#[derive(Debug, Args)]
struct EmbedArgs {
    /// Model folder (config.json, tokenizer.json, model.safetensors, modules.json, ...).
    #[arg(long)]
    model: PathBuf,
    /// A JSON list of strings (each encoded as it is) or a challenge records file (each
    /// record's combined text).
    #[arg(long)]
    input: PathBuf,
    /// Output .npy (float32, one row per input, in input order).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

#[derive(Debug, Args)]
struct FinetuneArgs {
    #[arg(long)]
    model: PathBuf,
    /// JSON files of texts: lists of strings or challenge records files (train and test).
    #[arg(long, num_args = 1.., required = true)]
    texts: Vec<PathBuf>,
    /// Output model folder (same format, loadable by sentence-transformers too).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 2e-5)]
    lr: f64,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Shard databases.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The database to merge into (created if missing).
    #[arg(long)]
    into: PathBuf,
}

#[derive(Debug, Args)]
struct SlurmArgs {
    sweep: PathBuf,
    /// Array tasks (= shards).
    #[arg(long)]
    tasks: usize,
    /// GPUs per task (0 = CPU jobs).
    #[arg(long, default_value_t = 0)]
    gpus_per_task: usize,
    #[arg(long)]
    partition: Option<String>,
    /// Time limit per task, in Slurm's format (e.g. 12:00:00).
    #[arg(long)]
    time: Option<String>,
    /// At most this many array tasks at once.
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Shared output folder for shard databases, checkpoints and logs.
    #[arg(long, default_value = "sweep-out")]
    out_dir: String,
    /// The array script; the merge script is written beside it as <name>.merge.sbatch.
    #[arg(long, default_value = "job.sbatch")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ResultsArgs {
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    /// Sweep name [default: the most recently run sweep].
    #[arg(long)]
    sweep: Option<String>,
    /// Sort by pooled out-of-fold RMSE (oof), mean fold RMSE (mean), macro RMSE (macro), and
    /// with validation probes the probe rows' RMSE (probe) or the shifted RMSE (shifted)
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    sort: Option<SortKey>,
    /// Show only the best N configs.
    #[arg(long)]
    top: Option<usize>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Also list the configs that left the sweep's definition (marked retired), after the
    /// current ones.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// A config id as printed by `results`.
    config_id: String,
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    #[arg(long)]
    sweep: Option<String>,
    /// Compare against this config instead of the best by the criterion compared.
    #[arg(long)]
    baseline: Option<String>,
    /// What is compared: per-fold RMSE (oof), macro RMSE (macro) or shifted RMSE (shifted);
    /// the reference is the best config by the same criterion, pooled
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    by: Option<Criterion>,
    /// The old spelling of `--by macro`.
    #[arg(long, hide = true, conflicts_with = "by")]
    by_macro: bool,
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    format: CompareFormat,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[arg(long, default_value = "results.db")]
    db: PathBuf,
    #[arg(long)]
    sweep: Option<String>,
    /// The config to export.
    #[arg(long, conflicts_with = "best")]
    config: Option<String>,
    /// Export the best config (by --by).
    #[arg(long)]
    best: bool,
    /// What "best" means: pooled OOF RMSE (oof), macro RMSE (macro) or shifted RMSE (shifted)
    /// [default: shifted when the sweep has probes, else oof].
    #[arg(long, value_enum)]
    by: Option<Criterion>,
    /// Export a greedy ensemble of N rounds over the sweep's complete configs instead of one
    /// config (forward selection with replacement on out-of-fold and probe rows, by --by).
    #[arg(long, value_name = "N", conflicts_with_all = ["config", "best"])]
    ensemble: Option<usize>,
    /// Test records [default: the config's data.test].
    #[arg(long)]
    test: Option<PathBuf>,
    /// Precomputed text embeddings of the --test records (row i for record i); required with
    /// --test when the config's text.encoder is "precomputed".
    #[arg(long, requires = "test")]
    test_embeddings: Option<PathBuf>,
    /// Output CSV (ID,score).
    #[arg(long)]
    out: PathBuf,
    /// Round the averaged scores to whole scores. Off by default: on the sample data's test
    /// labels rounding raised the RMSE of 5 of 8 configs (see the README).
    #[arg(long, conflicts_with = "no_round")]
    round: bool,
    /// Keep the averaged scores (the default).
    #[arg(long)]
    no_round: bool,
    /// Export even when some folds are not finished.
    #[arg(long)]
    allow_partial: bool,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Config file (TOML) with the sections `data`, `text`, `cv` and `train` of a sweep file.
    /// Relative paths inside it are relative to the current directory.
    config: PathBuf,
    /// Validation fold, 0-based (0 .. cv.folds - 1); the other folds train.
    #[arg(long)]
    fold: usize,
    /// Output folder for result.json and the best epoch's checkpoint
    /// [default: runs/<config name>/fold<K>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the final summary, not a line per epoch.
    #[arg(long)]
    quiet: bool,
    /// cpu or cuda:N (a GPU build).
    #[arg(long, default_value = "cpu")]
    device: Device,
}

/// Parses the command line, runs it and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if prints_a_report(&cli.command) {
        end_quietly_on_a_closed_pipe();
    }
    match run(cli) {
        Ok(code) => code,
        Err(mut error) => {
            name_flags(&mut error);
            eprintln!("error: {error}");
            ExitCode::from(error.process_exit_code())
        }
    }
}

/// Commands whose whole job is to print: `results | head` closing the pipe ends them, as
/// it ends other Unix tools, instead of a panic in `println!`. A sweep, a worker or the server
/// keep Rust's default (a write error), so a closed stdout never kills work in flight.
fn prints_a_report(command: &Command) -> bool {
    !matches!(command, Command::Run(_) | Command::Worker { .. } | Command::Serve(_))
}

/// The worker's side of the protocol: each finished epoch is one JSON line on stdout. A closed
/// pipe means the coordinator is gone: stop rather than train for nobody.
fn report_epoch_to_coordinator(epoch: &crate::train::EpochLog) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let line = serde_json::to_string(epoch).expect("an epoch log serializes");
    if writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_err() {
        std::process::exit(EXIT_FAILED as i32);
    }
}

fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Renames a library concept in an input error to the flag that sets it.
fn name_flags(error: &mut Error) {
    if let Some(input) = error.input_mut() {
        let flag = FLAGS.iter().find(|(concept, _)| input.field.as_deref() == Some(*concept));
        if let Some((_, flag)) = flag {
            input.field = Some(flag.to_string());
        }
    }
}

fn run(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Run(args) => run_sweep(args),
        Command::Results(args) => results(args),
        Command::Show(args) => {
            let store = Store::open_existing(&args.db)?;
            print!("{}", report::show::show(&store, &args.config_id)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare(args) => compare(args),
        Command::Export(args) => export(args),
        Command::BenchEpoch(args) => {
            let o = crate::job::bench::EpochBench {
                rank: args.rank,
                max_steps: args.max_steps,
                ..Default::default()
            };
            println!("{}", crate::job::bench_epoch_on(&args.device, args.precision, &o)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let store = Store::open_existing(&args.db)?;
            let (sweep_id, name) = store.resolve_sweep(args.sweep.as_deref())?;
            let (trials, space) = crate::sweep::study::report_trials(&store, sweep_id)?;
            let html = report::html::render_with_trials(&store, sweep_id, &trials, space.as_ref())?;
            crate::util::write_atomic(&args.out, html.as_bytes())?;
            println!("wrote the report of sweep {name:?} to {}", args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let server = crate::serve::Server::bind(crate::serve::ServeOptions {
                db: args.db,
                addr: args.addr,
                token: args.token,
                workers: args.workers,
            })?;
            print!("{}", server.announcement()?);
            server.run()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => train(args),
        Command::Merge(args) => {
            let summary = crate::sweep::merge::merge(&args.shards, &args.into)?;
            println!(
                "merged {} shard(s) into {}: {} jobs added, {} already there",
                summary.shards,
                args.into.display(),
                summary.jobs_added,
                summary.jobs_already_there
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm(args) => slurm(args),
        Command::Embed(args) => embed(args),
        Command::Finetune(args) => finetune(args),
        Command::Worker { job_file } => {
            crate::sweep::worker::run_worker(&job_file, &mut report_epoch_to_coordinator)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_sweep(args: RunArgs) -> CommandResult {
    let sweep = SweepFile::load(&args.sweep)?;
    let choice = match args.devices {
        Some(choice) => choice,
        None => sweep.resources.devices.parse().map_err(|e: InputError| {
            InputError::in_file(&args.sweep, e.message).field("resources.devices")
        })?,
    };
    let devices = choice.resolve();
    let jobs_per_device = args.jobs_per_device.unwrap_or(sweep.resources.jobs_per_device);
    if jobs_per_device == 0 {
        return Err(InputError::new("must be at least 1").field("--jobs-per-device").into());
    }
    let plan = crate::sweep::plan(&sweep)?;
    if args.dry_run {
        print_dry_run(&sweep, &plan, args.shard);
        return Ok(ExitCode::SUCCESS);
    }
    let shard = args.shard;
    let options = RunOptions {
        db: args.db.clone(),
        devices,
        jobs_per_device,
        max_attempts: sweep.resources.max_attempts.max(1),
        shard,
        worker_exe: None,
        keep_checkpoints: sweep.resources.checkpoints == crate::sweep::spec::Checkpoints::All,
        no_prune: args.no_prune,
    };
    let mut progress = progress::Progress::new();
    let summary =
        crate::sweep::run_sweep(&sweep, &plan, &options, &mut |event| progress.render(event))?;
    println!(
        "sweep {:?}: {} of {} jobs done, {} failed{}{}; results in {}",
        sweep.name,
        summary.done,
        summary.jobs_total,
        summary.failed,
        [(summary.diverged, "diverged"), (summary.pruned, "pruned")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(", {n} {what}"))
            .collect::<String>(),
        if summary.interrupted + summary.not_started > 0 {
            format!(
                ", {} interrupted, {} not started (run the same command again to resume)",
                summary.interrupted, summary.not_started
            )
        } else {
            String::new()
        },
        args.db.display()
    );
    let incomplete = summary.failed + summary.interrupted + summary.not_started > 0;
    Ok(if incomplete { ExitCode::from(EXIT_FAILED) } else { ExitCode::SUCCESS })
}

fn embed(args: EmbedArgs) -> CommandResult {
    use crate::text::transformer::{embed_file_with, EmbedOptions};
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} texts  {per_sec}  ETA {eta}")
            .expect("template"),
    );
    let options = EmbedOptions {
        batch_size: args.batch_size.max(1),
        cache_dir: Some(crate::text::cache_dir()),
    };
    let rows =
        embed_file_with(&args.model, &args.input, &args.out, &options, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "encoded {rows} texts in {seconds:.1}s ({:.1} texts/s) -> {}",
        rows as f64 / seconds.max(1e-9),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn finetune(args: FinetuneArgs) -> CommandResult {
    use crate::text::transformer::{finetune, read_texts, FinetuneSettings};
    let mut texts = Vec::new();
    for path in &args.texts {
        texts.extend(read_texts(path)?);
    }
    let settings = FinetuneSettings {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        ..FinetuneSettings::default()
    };
    let report = finetune(&args.model, &texts, &args.out, &settings)?;
    let (first, last) = (
        report.losses.first().copied().unwrap_or(f32::NAN),
        report.losses.last().copied().unwrap_or(f32::NAN),
    );
    println!(
        "fine-tuned on {} texts: {} steps, loss {first:.4} -> {last:.4}; model folder {}",
        texts.len(),
        report.steps,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn slurm(args: SlurmArgs) -> CommandResult {
    let sweep = SweepFile::load(&args.sweep)?;
    if args.tasks == 0 {
        return Err(InputError::new("must be at least 1").field("--tasks").into());
    }
    let options = crate::sweep::slurm::SlurmOptions {
        tasks: args.tasks,
        gpus_per_task: args.gpus_per_task,
        partition: args.partition,
        time: args.time,
        max_concurrent: args.max_concurrent,
        out_dir: args.out_dir.clone(),
    };
    let workdir = std::env::current_dir()?;
    let sweep_path = workdir.join(&args.sweep);
    let exe = std::env::current_exe()?;
    crate::sweep::slurm::create_output_folder(&workdir, &options)?;
    let (array, merge) =
        crate::sweep::slurm::scripts(&sweep_path, &sweep.name, &exe, &workdir, &options);
    let merge_path = args.out.with_extension("merge.sbatch");
    crate::util::write_atomic(&args.out, array.as_bytes())?;
    crate::util::write_atomic(&merge_path, merge.as_bytes())?;
    println!(
        "wrote {} ({} array tasks) and {}",
        args.out.display(),
        args.tasks,
        merge_path.display()
    );
    println!(
        "submit with:\n  jid=$(sbatch --parsable {}) && sbatch --dependency=afterany:$jid {}",
        args.out.display(),
        merge_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_dry_run(sweep: &SweepFile, plan: &crate::sweep::Plan, shard: Option<Shard>) {
    if sweep.search.strategy != crate::search::Strategy::Grid {
        print_search_plan(sweep, plan, shard);
        return;
    }
    let points = &plan.expansion.points;
    println!(
        "sweep {:?} ({}): {} configs x {} folds = {} jobs",
        sweep.name,
        sweep.path.display(),
        points.len(),
        plan.folds.folds,
        points.len() * plan.folds.folds
    );
    for (point, id) in points.iter().zip(&plan.ids) {
        println!("  {id}  {}", point.label());
    }
    if !plan.expansion.dropped.is_empty() {
        println!(
            "dropped {} invalid model/loss combinations (valid pairs: {}):",
            plan.expansion.dropped.len(),
            crate::config::valid_pairs_text()
        );
        for (varying, reason) in &plan.expansion.dropped {
            println!("  {}  ({reason})", crate::sweep::spec::label(varying));
        }
    }
    println!(
        "fold assignment {} over {} records; data fingerprint {}",
        plan.folds.hash(),
        plan.folds.fold_of.len(),
        plan.data_fingerprint
    );
}

/// The plan of a random or tpe search: the space, the trials, the seed, the sampler and the
/// pruner.
fn print_search_plan(sweep: &SweepFile, plan: &crate::sweep::Plan, shard: Option<Shard>) {
    use crate::search::{Domain, Strategy};
    use crate::sweep::study::{stream_budget, stream_seed};
    let search = &sweep.search;
    let trials = search.trials.unwrap_or(0);
    let strategy = if search.strategy == Strategy::Tpe { "tpe" } else { "random" };
    println!(
        "sweep {:?} ({}): {strategy} search, {trials} trials x {} folds = up to {} jobs, seed {}",
        sweep.name,
        sweep.path.display(),
        plan.folds.folds,
        trials * plan.folds.folds as u64,
        search.seed
    );
    if let Some(s) = shard {
        println!(
            "shard {}/{}: its own stream of {} trials, seed {}",
            s.index,
            s.count,
            stream_budget(trials, shard),
            stream_seed(search.seed, shard)
        );
    }
    if search.strategy == Strategy::Tpe {
        let startup =
            search.startup_trials.unwrap_or(crate::search::TpeSampler::new(0).n_startup_trials);
        println!(
            "sampler: TPE, {startup} uniform start-up trials, running trials as constant liars"
        );
    } else {
        println!("sampler: uniform random");
    }
    println!("space:");
    for axis in sweep.space().axes {
        let domain = match &axis.domain {
            Domain::Categorical(values) => {
                let values: Vec<String> =
                    values.iter().map(crate::sweep::spec::value_text).collect();
                format!("one of [{}]", values.join(", "))
            }
            Domain::Float { min, max, log } => {
                format!("float in [{min}, {max}]{}", if *log { ", log scale" } else { "" })
            }
            Domain::Int { min, max, log } => {
                format!("integer in [{min}, {max}]{}", if *log { ", log scale" } else { "" })
            }
        };
        println!("  {}: {domain}", axis.key);
    }
    println!(
        "invalid model/loss pairs are never proposed (valid: {})",
        crate::config::valid_pairs_text()
    );
    match &search.prune {
        None => println!("pruning: off (every trial runs all its folds to the end)"),
        Some(p) => {
            let asha = if p.epochs {
                format!("ASHA over epochs (rungs from epoch {}, eta {})", p.min_epochs, p.eta)
            } else {
                "no ASHA".into()
            };
            let race = if p.folds {
                format!(
                    "racing over folds, fold-major (after {} folds, one-sided p < {})",
                    p.min_folds, p.alpha
                )
            } else {
                "no racing".into()
            };
            println!("pruning: {asha}; {race}");
        }
    }
    println!(
        "fold assignment {} over {} records; data fingerprint {}",
        plan.folds.hash(),
        plan.folds.fold_of.len(),
        plan.data_fingerprint
    );
}

fn results(args: ResultsArgs) -> CommandResult {
    let store = Store::open_existing(&args.db)?;
    let (sweep_id, name) = store.resolve_sweep(args.sweep.as_deref())?;
    let exporter = report::exporter(args.format);
    let (mut rows, sort) = results::summaries_by(&store, sweep_id, args.sort, retired(args.all))?;
    require_probes(&rows, sort == SortKey::Probe || sort == SortKey::Shifted, "--sort")?;
    let keys = report::varying_keys(&rows);
    if let Some(top) = args.top {
        rows.truncate(top);
    }
    if args.format == OutputFormat::Table {
        println!("sweep {name:?}: {} configs, sorted by {}", rows.len(), sort.name());
    }
    print!("{}", exporter.export(&rows, &keys)?);
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs) -> CommandResult {
    let store = Store::open_existing(&args.db)?;
    let (sweep_id, _) = store.resolve_sweep(args.sweep.as_deref())?;
    let by = if args.by_macro { Some(Criterion::Macro) } else { args.by };
    let (rows, key) =
        results::summaries_by(&store, sweep_id, by.map(Criterion::sort_key), Retired::Exclude)?;
    let by = by.unwrap_or_else(|| Criterion::default_for(&rows));
    require_probes(&rows, key == SortKey::Shifted, "--by")?;
    let report = report::compare::compare(&store, &rows, args.baseline.as_deref(), by)?;
    match args.format {
        CompareFormat::Table => print!("{}", report::compare::render(&report)),
        CompareFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// A criterion that needs probes on a sweep without them is a usage error.
fn require_probes(rows: &[ConfigSummary], needed: bool, flag: &str) -> Result<(), Error> {
    if needed && !results::has_probes(rows) {
        return Err(InputError::new(
            "this sweep has no validation probes: add [validation] probe = { fraction, \
             score_min, score_max } to the sweep file and rerun it",
        )
        .field(flag)
        .into());
    }
    Ok(())
}

fn export(args: ExportArgs) -> CommandResult {
    let store = Store::open_existing(&args.db)?;
    if let Some(rounds) = args.ensemble {
        return export_ensemble(&store, &args, rounds);
    }
    let config_id = match (&args.config, args.best) {
        (Some(id), _) => id.clone(),
        (None, true) => {
            let (sweep_id, _) = store.resolve_sweep(args.sweep.as_deref())?;
            let (rows, key) = results::summaries_by(
                &store,
                sweep_id,
                args.by.map(Criterion::sort_key),
                Retired::Exclude,
            )?;
            require_probes(&rows, key == SortKey::Shifted, "--by")?;
            results::best(&rows, key)
                .ok_or_else(|| {
                    InputError::new("no config of this sweep has results yet").field("--best")
                })?
                .id
                .clone()
        }
        (None, false) => {
            return Err(InputError::new("say which config: --config ID or --best")
                .field("--config")
                .into())
        }
    };
    let request = report::export::ExportRequest {
        config_id: config_id.clone(),
        test: args.test,
        test_embeddings: args.test_embeddings,
        out: args.out.clone(),
        round: args.round,
        allow_partial: args.allow_partial,
    };
    let done = report::export::export(&store, &request)?;
    let summary = match store.sweep_of_config(&config_id)? {
        Some(sweep_id) => {
            results::summaries_with(&store, sweep_id, SortKey::Oof, Retired::Include)?
                .into_iter()
                .find(|r| r.id == config_id)
        }
        None => None,
    };
    let source = match done.source {
        report::export::Source::Stored => "stored fold prediction(s)",
        report::export::Source::Checkpoints => "fold checkpoint(s)",
    };
    println!(
        "config {config_id}: {} test rows from {} {source} -> {}",
        done.rows,
        done.folds_used,
        args.out.display()
    );
    if let Some(s) = summary {
        println!("{}  [{}]", figures(&s), s.label);
    }
    print_distribution(&done);
    Ok(ExitCode::SUCCESS)
}

/// Pooled OOF, macro and (with probes) shifted RMSE of a config, on one line.
fn figures(s: &ConfigSummary) -> String {
    let value = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    let mut line = format!("pooled OOF RMSE {}  macro {}", value(s.oof_rmse), value(s.macro_rmse));
    if s.probe.is_some() {
        line += &format!("  probe {}  shifted {}", value(s.probe_rmse), value(s.shifted_rmse));
    }
    line
}

fn print_distribution(done: &report::export::ExportReport) {
    let histogram: Vec<String> =
        done.histogram.iter().enumerate().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "prediction distribution (nearest score): {}  mean {:.3}",
        histogram.join(" "),
        done.mean
    );
}

fn export_ensemble(store: &Store, args: &ExportArgs, rounds: usize) -> CommandResult {
    let (sweep_id, _) = store.resolve_sweep(args.sweep.as_deref())?;
    let (rows, key) =
        results::summaries_by(store, sweep_id, args.by.map(Criterion::sort_key), Retired::Exclude)?;
    require_probes(&rows, key == SortKey::Shifted, "--by")?;
    let by = args.by.unwrap_or_else(|| Criterion::default_for(&rows));
    let done = report::ensemble::export_ensemble(store, &rows, by, rounds, &args.out, args.round)?;
    println!(
        "ensemble of {} config(s), {rounds} rounds of greedy selection by {} RMSE:",
        done.picks.len(),
        key.name()
    );
    for (id, label, weight) in &done.picks {
        println!("  {id}  weight {weight:.3}  [{label}]");
    }
    println!(
        "  in-sample {} RMSE (weights chosen on these rows)  {:.4}",
        key.name(),
        done.in_sample
    );
    println!(
        "  nested {} RMSE (weights chosen on the other folds)  {:.4}",
        key.name(),
        done.nested
    );
    println!("{} test rows -> {}", done.export.rows, args.out.display());
    print_distribution(&done.export);
    Ok(ExitCode::SUCCESS)
}

fn train(args: TrainArgs) -> CommandResult {
    let config = Config::load(&args.config)?;
    let out = args.out.clone().unwrap_or_else(|| default_out_dir(&args.config, args.fold));
    let data = TrainingData::load(&config)?;
    let quiet = args.quiet;
    // A gbdt job's "epochs" are its boosting rounds.
    let total =
        if config.train.model.is_neural() { config.train.epochs } else { config.train.gbdt.trees };
    let mut on_epoch = |e: &EpochLog| {
        if !quiet {
            let shifted = e.shifted_rmse.map_or(String::new(), |v| format!("  shifted {v:>7.4}"));
            println!(
                "epoch {:>4}/{}  train_loss {:>9.5}  val_rmse {:>7.4}{shifted}  lr {:.2e}  {:>6.1}s",
                e.epoch, total, e.train_loss, e.val_rmse, e.lr, e.seconds
            );
        }
    };
    let result = crate::job::run_fold_on(
        &args.device,
        &config,
        &data,
        args.fold,
        Some(&out.join("checkpoint")),
        &mut on_epoch,
    )?;
    let json = serde_json::to_string_pretty(&result)?;
    // A gbdt job saves no checkpoint, which would otherwise have made the folder.
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    crate::util::write_atomic(&out.join("result.json"), json.as_bytes())
        .with_context(|| format!("writing the result into {}", out.display()))?;
    print_summary(&result, &out);
    Ok(ExitCode::SUCCESS)
}

fn default_out_dir(config: &Path, fold: usize) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    PathBuf::from("runs").join(stem).join(format!("fold{fold}"))
}

fn print_summary(result: &FoldResult, out: &Path) {
    let m = &result.metrics;
    println!(
        "\nfold {}/{}: best epoch {} of {}; {} train rows + {} synthetic, {} validation rows",
        result.fold,
        result.folds,
        result.best_epoch,
        result.epochs_run,
        result.train_rows,
        result.synthetic_rows,
        result.val_rows
    );
    println!(
        "RMSE {:.4}  rounded {:.4}  macro {:.4}  (train-mean predictor: {:.4})",
        m.rmse, m.rounded_rmse, m.macro_rmse, result.mean_predictor_rmse
    );
    if let Some(probe) = &result.probe {
        println!(
            "probe RMSE {:.4}  shifted {:.4}  (train-mean predictor shifted: {:.4}; {} probe rows)",
            probe.rmse,
            probe.shifted_rmse,
            probe.mean_predictor_shifted_rmse,
            probe.rows.len()
        );
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["score", "count", "RMSE", "predicted"]);
    for bin in &m.bins {
        table.add_row(vec![
            Cell::new(bin.score).set_alignment(CellAlignment::Right),
            Cell::new(bin.count).set_alignment(CellAlignment::Right),
            Cell::new(bin.rmse.map_or("-".to_string(), |r| format!("{r:.3}")))
                .set_alignment(CellAlignment::Right),
            Cell::new(m.prediction_histogram[bin.score]).set_alignment(CellAlignment::Right),
        ]);
    }
    println!("{table}");
    println!("wrote {}", out.join("result.json").display());
}

/// `--all` as the summaries' choice of configs.
fn retired(all: bool) -> Retired {
    if all {
        Retired::Include
    } else {
        Retired::Exclude
    }
}
