//! The single-job and helper commands: `train`, `embed`, `finetune` and `slurm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::cli::args::*;
use crate::cli::CommandResult;
use crate::config::Config;
use crate::error::InputError;
use crate::job::{FoldResult, TrainingData};
use crate::sweep::SweepFile;
use crate::train::EpochLog;

pub(crate) fn embed(args: EmbedArgs) -> CommandResult {
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

pub(crate) fn finetune(args: FinetuneArgs) -> CommandResult {
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

pub(crate) fn slurm(args: SlurmArgs) -> CommandResult {
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

pub(crate) fn train(args: TrainArgs) -> CommandResult {
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
    let run = crate::job::run_fold_on(
        &args.device,
        &config,
        &data,
        args.fold,
        Some(&out.join("checkpoint")),
        &mut on_epoch,
    )?;
    let result = match run {
        crate::job::FoldRun::Done(result) => *result,
        // One fold on its own: a diverged run is this command's failure (exit 1).
        crate::job::FoldRun::Diverged(diverged) => return Err(anyhow::Error::new(diverged).into()),
    };
    let json = serde_json::to_string_pretty(&result)?;
    // A gbdt job saves no checkpoint, which would otherwise have made the folder.
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    crate::util::write_atomic(&out.join("result.json"), json.as_bytes())
        .with_context(|| format!("writing the result into {}", out.display()))?;
    print_summary(&result, &out);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn default_out_dir(config: &Path, fold: usize) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    PathBuf::from("runs").join(stem).join(format!("fold{fold}"))
}

pub(crate) fn print_summary(result: &FoldResult, out: &Path) {
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
