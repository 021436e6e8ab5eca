//! `foldsweep run`: a sweep (or its dry-run plan), with live progress and the closing summary.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::args::*;
use crate::cli::progress;
use crate::cli::CommandResult;
use crate::error::EXIT_FAILED;
use crate::sweep::shard::Shard;
use crate::sweep::{StopReason, SweepFile};

pub(crate) fn run_sweep(args: RunArgs) -> CommandResult {
    let sweep = SweepFile::load(&args.sweep)?;
    let options = crate::cli::resolve::run_options(&args, &sweep)?;
    let plan = crate::sweep::plan(&sweep)?;
    if args.dry_run {
        print_dry_run(&sweep, &plan, args.shard);
        return Ok(ExitCode::SUCCESS);
    }

    let mut progress = progress::Progress::new();
    let summary =
        crate::sweep::run_sweep(&sweep, &plan, &options, &mut |event| progress.render(event))?;
    print_run_end(&sweep, &args.db, &summary);
    let incomplete = summary.failed + summary.interrupted + summary.not_started > 0;
    let planned = summary.stopped.is_some_and(|r| r.is_planned()) && summary.failed == 0;
    Ok(if incomplete && !planned { ExitCode::from(EXIT_FAILED) } else { ExitCode::SUCCESS })
}

/// The run's last lines: what it did, how to continue, and the sweep's `status` summary.
pub(crate) fn print_run_end(sweep: &SweepFile, db: &Path, summary: &crate::sweep::RunSummary) {
    let extra = [(summary.diverged, "diverged"), (summary.pruned, "pruned")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(", {n} {what}"))
        .collect::<String>();
    let left = summary.interrupted + summary.not_started;
    let stop = match summary.stopped {
        Some(StopReason::Deadline) => {
            format!("; stopped at the deadline: {left} jobs left; run the same command to continue")
        }
        Some(reason) if left > 0 => format!(
            ", {} interrupted, {} not started ({}; run the same command again to resume)",
            summary.interrupted,
            summary.not_started,
            match reason {
                StopReason::Signal(name) => format!("stopped by {name}"),
                StopReason::Store => "stopped: the database could not be written".to_string(),
                StopReason::Deadline => unreachable!(),
            }
        ),
        _ if left > 0 => format!(
            ", {} interrupted, {} not started (run the same command again to resume)",
            summary.interrupted, summary.not_started
        ),
        _ => String::new(),
    };
    let recovered = match summary.recovered {
        0 => String::new(),
        n => format!(" ({n} recorded from result files an earlier run left)"),
    };
    println!(
        "sweep {:?}: {} of {} jobs done{recovered}, {} failed{extra}{stop}; results in {}",
        sweep.name,
        summary.done,
        summary.jobs_total,
        summary.failed,
        db.display()
    );
    // The morning summary; a database that cannot be read now is no reason to fail the run.
    let status = crate::store::Store::open_read_only(db)
        .and_then(|store| crate::report::status::statuses(&store, Some(&sweep.name)));
    if let Ok(statuses) = status {
        print!("{}", crate::report::status::render(&statuses));
    }
}

pub(crate) fn status(args: StatusArgs) -> CommandResult {
    let store = crate::store::Store::open_read_only(&args.db)?;
    let statuses = crate::report::status::statuses(&store, args.sweep.as_deref())?;
    match args.format {
        StatusFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "sweeps": statuses }))?
            )
        }
        StatusFormat::Text => print!("{}", crate::report::status::render(&statuses)),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_dry_run(sweep: &SweepFile, plan: &crate::sweep::Plan, shard: Option<Shard>) {
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
pub(crate) fn print_search_plan(
    sweep: &SweepFile,
    plan: &crate::sweep::Plan,
    shard: Option<Shard>,
) {
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
                "no ASHA (`epochs = true` turns it on)".into()
            };
            let race = match (p.folds, p.race) {
                (false, _) => "no racing".into(),
                (true, crate::search::RaceRule::Forgiving) => format!(
                    "racing over folds, forgiving rule (after {} folds, mean above the complete \
                     incumbent's worst fold)",
                    p.min_folds
                ),
                (true, crate::search::RaceRule::Ttest) => format!(
                    "racing over folds, corrected t-test (after {} folds, one-sided p < {})",
                    p.min_folds, p.alpha
                ),
            };
            println!("pruning: {race}; {asha}");
        }
    }
    println!(
        "fold assignment {} over {} records; data fingerprint {}",
        plan.folds.hash(),
        plan.folds.fold_of.len(),
        plan.data_fingerprint
    );
}
