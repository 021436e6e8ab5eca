//! `export`: a submission from the best config, a named one, or an ensemble.

use std::process::ExitCode;

use super::results::require_probes;
use crate::cli::args::*;
use crate::cli::CommandResult;
use crate::error::InputError;
use crate::report::{self};
use crate::results::{self, ConfigSummary, Criterion, Retired, SortKey};
use crate::store::Store;

pub(crate) fn export(args: ExportArgs) -> CommandResult {
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
pub(crate) fn figures(s: &ConfigSummary) -> String {
    let value = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    let mut line = format!("pooled OOF RMSE {}  macro {}", value(s.oof_rmse), value(s.macro_rmse));
    if s.probe.is_some() {
        line += &format!("  probe {}  shifted {}", value(s.probe_rmse), value(s.shifted_rmse));
    }
    line
}

pub(crate) fn print_distribution(done: &report::export::ExportReport) {
    let histogram: Vec<String> =
        done.histogram.iter().enumerate().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "prediction distribution (nearest score): {}  mean {:.3}",
        histogram.join(" "),
        done.mean
    );
}

pub(crate) fn export_ensemble(store: &Store, args: &ExportArgs, rounds: usize) -> CommandResult {
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
    let (single_id, single_label) = &done.single;
    println!(
        "single best config {single_id} [{single_label}], nested {} RMSE (chosen on the other folds)  {:.4}",
        key.name(),
        done.single_nested
    );
    if done.ensemble {
        println!("exported: the ensemble (its nested score is the lower)");
    } else {
        println!(
            "exported: the single best config {single_id}: the ensemble's nested score is no lower, \
             so blending would not help"
        );
    }
    println!("{} test rows -> {}", done.export.rows, args.out.display());
    print_distribution(&done.export);
    Ok(ExitCode::SUCCESS)
}
