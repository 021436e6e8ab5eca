//! The command line: argument parsing, progress output and exit codes. Thin on purpose:
//! all real work lives in the library modules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::backend::{cpu_device, CpuTrain};
use crate::config::Config;
use crate::error::is_input_error;
use crate::job::{run_fold, FoldResult, TrainingData};
use crate::train::EpochLog;

/// Exit codes: 0 success, 1 some jobs failed (or an internal error), 2 bad input or usage.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "foldsweep",
    version,
    about = "Hyperparameter sweeps with k-fold cross-validation for embedding-pair regression",
    long_about = "Hyperparameter sweeps with k-fold cross-validation for embedding-pair regression \
                  (metric embedding x multilingual text -> 0-10 score), built for the DA5401 \
                  metric-learning challenge.\n\nExit codes: 0 success, 1 failure, 2 bad input or usage."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train and evaluate one config on one fold.
    Train(TrainArgs),
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
}

/// Parses the command line, runs it and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(EXIT_BAD_INPUT) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(if is_input_error(&error) { EXIT_BAD_INPUT } else { EXIT_FAILED })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let out = args.out.clone().unwrap_or_else(|| default_out_dir(&args.config, args.fold));
    let data = TrainingData::load(&config)?;
    let quiet = args.quiet;
    let mut on_epoch = |e: &EpochLog| {
        if !quiet {
            println!(
                "epoch {:>4}/{}  train_loss {:>9.5}  val_rmse {:>7.4}  lr {:.2e}  {:>6.1}s",
                e.epoch, config.train.epochs, e.train_loss, e.val_rmse, e.lr, e.seconds
            );
        }
    };
    let device = cpu_device();
    let result = run_fold::<CpuTrain>(&config, &data, args.fold, Some(&out.join("checkpoint")), &device, &mut on_epoch)?;
    let json = serde_json::to_string_pretty(&result)?;
    crate::util::write_atomic(&out.join("result.json"), json.as_bytes())
        .with_context(|| format!("writing the result into {}", out.display()))?;
    print_summary(&result, &out);
    Ok(ExitCode::SUCCESS)
}

fn default_out_dir(config: &Path, fold: usize) -> PathBuf {
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "config".into());
    PathBuf::from("runs").join(stem).join(format!("fold{fold}"))
}

fn print_summary(result: &FoldResult, out: &Path) {
    let m = &result.metrics;
    println!(
        "\nfold {}/{}: best epoch {} of {}; {} train rows + {} synthetic, {} validation rows",
        result.fold, result.folds, result.best_epoch, result.epochs_run, result.train_rows, result.synthetic_rows, result.val_rows
    );
    println!(
        "RMSE {:.4}  rounded {:.4}  macro {:.4}  (train-mean predictor: {:.4})",
        m.rmse, m.rounded_rmse, m.macro_rmse, result.mean_predictor_rmse
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["score", "count", "RMSE", "predicted"]);
    for bin in &m.bins {
        table.add_row(vec![
            Cell::new(bin.score).set_alignment(CellAlignment::Right),
            Cell::new(bin.count).set_alignment(CellAlignment::Right),
            Cell::new(bin.rmse.map_or("-".to_string(), |r| format!("{r:.3}"))).set_alignment(CellAlignment::Right),
            Cell::new(m.prediction_histogram[bin.score]).set_alignment(CellAlignment::Right),
        ]);
    }
    println!("{table}");
    println!("wrote {}", out.join("result.json").display());
}
