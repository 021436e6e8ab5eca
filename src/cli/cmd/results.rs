//! `results` and `compare`: the ranked table and which differences are real.

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::cli::args::*;
use crate::cli::CommandResult;
use crate::error::{Error, InputError};
use crate::report::{self, OutputFormat};
use crate::results::{self, ConfigSummary, Criterion, Retired, SortKey};
use crate::store::Store;

pub(crate) fn results(args: ResultsArgs) -> CommandResult {
    let store = Store::open_existing(&args.db)?;
    let (sweep_id, name) = store.resolve_sweep(args.sweep.as_deref())?;
    let exporter = report::exporter(args.format, table_layout(args.wide));
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

/// On a terminal the table fits its width, with the axes, folds and criteria; `--wide`, or
/// piped output, keeps every column at its natural width (twelve more would not fit anyway).
fn table_layout(wide: bool) -> report::TableLayout {
    if std::io::stdout().is_terminal() && !wide {
        report::TableLayout { wide: false, width: comfy_table::Table::new().width() }
    } else {
        report::TableLayout::default()
    }
}

pub(crate) fn compare(args: CompareArgs) -> CommandResult {
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
pub(crate) fn require_probes(
    rows: &[ConfigSummary],
    needed: bool,
    flag: &str,
) -> Result<(), Error> {
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

/// `--all` as the summaries' choice of configs.
pub(crate) fn retired(all: bool) -> Retired {
    if all {
        Retired::Include
    } else {
        Retired::Exclude
    }
}
