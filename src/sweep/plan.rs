//! The plan of a sweep before anything runs: its configs, the dropped model/loss pairs and
//! the job count (`run --dry-run` prints it).

use super::fingerprint::config_fingerprints;
use super::*;
use crate::cv::FoldAssignment;
use crate::data::{Dataset, MetricTable, Split};
use crate::search::Strategy;

/// A sweep's configs with their ids, ready to register.
pub struct Plan {
    pub expansion: Expansion,
    pub ids: Vec<String>,
    /// Per config: the content hash of everything it reads.
    pub fingerprints: Vec<String>,
    /// The sweep's: a hash of its configs' fingerprints.
    pub data_fingerprint: String,
    pub folds: FoldAssignment,
}

/// Expands the grid, validates the data once (bad input fails here, before any job starts)
/// and computes the config ids.
pub fn plan(sweep: &SweepFile) -> anyhow::Result<Plan> {
    let searching = sweep.search.strategy != Strategy::Grid;
    let expansion = if searching {
        Expansion { points: Vec::new(), dropped: Vec::new() }
    } else {
        sweep.expand()?
    };
    let first = match expansion.points.first() {
        Some(first) => first.clone(),
        None if searching => reference_point(sweep)?,
        None => {
            return Err(crate::error::InputError::in_file(
                &sweep.path,
                "the grid leaves no valid config (every model/loss pair was dropped)",
            )
            .into())
        }
    };
    let metrics =
        MetricTable::load(&first.config.data.metric_names, &first.config.data.metric_embeddings)?;
    let dataset = Dataset::load(&first.config.data.train, Split::Train, metrics)?;
    let folds = FoldAssignment::stratified(
        &dataset.score_bins(),
        first.config.cv.folds,
        first.config.cv.seed,
    );
    // Text features of every distinct text section, so a bad .npy fails now, not in a job,
    // and a `text.finetune` model is trained here, once, before any worker needs it.
    let mut seen = Vec::new();
    for point in expansion.points.iter().chain(searching.then_some(&first)) {
        if !seen.contains(&point.config.text) {
            crate::text::text_features(&point.config, &dataset, crate::text::Part::Train)?;
            seen.push(point.config.text.clone());
        }
    }
    let fingerprints = config_fingerprints(&expansion.points)?;
    let ids = expansion
        .points
        .iter()
        .zip(&fingerprints)
        .map(|(p, fingerprint)| config_id(&p.config, fingerprint, &folds.hash()))
        .collect();
    // A search's configs come later, one per trial: its data are the reference config's.
    let data_fingerprint = if searching {
        spec::sweep_fingerprint(&config_fingerprints(std::slice::from_ref(&first))?)
    } else {
        spec::sweep_fingerprint(&fingerprints)
    };
    Ok(Plan { expansion, ids, fingerprints, data_fingerprint, folds })
}

/// A random or tpe sweep's stand-in for its configs before any trial exists (its data, text
/// features and fold assignment are checked with it): the point the sampler proposes for a
/// trial number no trial uses, with no history.
pub(super) fn reference_point(sweep: &SweepFile) -> anyhow::Result<GridPoint> {
    let sampler = sweep.search.sampler().expect("random or tpe");
    let point = sampler
        .propose(&sweep.space(), &[], &[], u64::MAX, &|p| sweep.is_valid_point(p))
        .map_err(|e| crate::error::InputError::in_file(&sweep.path, e.to_string()))?;
    match sweep.apply(&point)? {
        Ok(grid_point) => Ok(grid_point),
        Err(reason) => Err(crate::error::InputError::in_file(&sweep.path, reason).into()),
    }
}
