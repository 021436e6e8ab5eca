//! `run_sweep`: register the sweep's definition and jobs, then hand them to the dispatcher;
//! and the summary it ends with.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::dispatcher::SweepLoop;
use super::interrupt::install_interrupt_handler;
use super::interrupt::INTERRUPTS;
use super::launcher::Launcher;
use super::*;
use crate::backend::Device;
use crate::search::Strategy;
use crate::store::{JobStatus, NewConfig, Store, SweepDefinition};

/// A sweep as registered for this run.
pub(super) struct Registered {
    pub(super) sweep_id: i64,
    /// The (config, fold) jobs this run is responsible for (the shard's slice, or all).
    pub(super) selected: Vec<(String, usize)>,
    /// How many jobs the whole sweep has.
    pub(super) all_jobs: usize,
}

/// Registers the sweep's current definition.
pub(super) fn register(
    store: &mut Store,
    sweep: &SweepFile,
    plan: &Plan,
    options: &RunOptions,
) -> anyhow::Result<Registered> {
    let points = &plan.expansion.points;
    let labels: Vec<String> = points.iter().map(GridPoint::label).collect();
    let params: Vec<String> =
        points.iter().map(|p| serde_json::to_string(&p.config).expect("json")).collect();
    let varying: Vec<String> = points.iter().map(|p| spec::varying_json(&p.varying)).collect();
    let configs: Vec<NewConfig> = (0..points.len())
        .map(|i| NewConfig {
            id: &plan.ids[i],
            params_json: &params[i],
            varying_json: &varying[i],
            label: &labels[i],
            data_fingerprint: &plan.fingerprints[i],
        })
        .collect();
    let folds = plan.folds.folds;
    let all_jobs: Vec<(String, usize)> =
        plan.ids.iter().flat_map(|id| (0..folds).map(move |f| (id.clone(), f))).collect();
    let searching = sweep.search.strategy != Strategy::Grid;
    let selected: Vec<(String, usize)> = match options.shard {
        // A search shard runs its own trials into its own database: all of that database's.
        Some(_) if searching => Vec::new(),
        Some(shard) => shard.select(&all_jobs).into_iter().cloned().collect(),
        None => all_jobs.clone(),
    };
    let definition = SweepDefinition {
        name: &sweep.name,
        definition: &sweep.source,
        data_fingerprint: &plan.data_fingerprint,
        fold_hash: &plan.folds.hash(),
        folds,
        keep_trials: searching,
    };
    let (sweep_id, _added) = store.register_sweep(&definition, &configs, &selected)?;
    Ok(Registered { sweep_id, selected, all_jobs: all_jobs.len() })
}

/// Runs the sweep's pending jobs, reporting progress to `on_event`.
pub fn run_sweep(
    sweep: &SweepFile,
    plan: &Plan,
    options: &RunOptions,
    on_event: &mut dyn FnMut(&SweepEvent),
) -> anyhow::Result<RunSummary> {
    install_interrupt_handler();
    let mut store = Store::open(&options.db)?;
    let Registered { sweep_id, selected, all_jobs } = register(&mut store, sweep, plan, options)?;
    store.requeue_for_rerun(sweep_id)?;
    if options.no_prune {
        store.requeue_pruned(sweep_id)?;
    }
    let study = study::Study::new(sweep, options.shard, &plan.folds);
    let slice: Option<HashSet<(String, usize)>> = match (&study, options.shard) {
        (None, Some(_)) => Some(selected.iter().cloned().collect()),
        _ => None,
    };
    let filter = |config_id: &str, fold: usize| {
        slice.as_ref().is_none_or(|s| s.contains(&(config_id.to_string(), fold)))
    };
    // A search's jobs: those of its trials so far, and every fold of the trials to come.
    let trials_to_come = match &study {
        Some(study) => study.budget.saturating_sub(study.trials(&store, sweep_id)?.len() as u64),
        None => 0,
    } as usize
        * plan.folds.folds;
    let jobs_total = match &study {
        Some(_) => store.status_counts(sweep_id)?.values().sum::<usize>() + trials_to_come,
        None => selected.len(),
    };
    let to_run = store.count_jobs(sweep_id, JobStatus::Pending, &filter)? + trials_to_come;
    if to_run == 0 {
        let running = store.count_jobs(sweep_id, JobStatus::Running, &filter)?;
        on_event(&SweepEvent::NothingToDo { sweep: sweep.name.clone(), jobs_total, running });
        if running == 0 {
            let summary = final_summary(&store, sweep_id, &filter, jobs_total)?;
            on_event(&SweepEvent::Finished { summary });
            return Ok(summary);
        }
    }
    let slot_devices: Vec<Device> = options
        .devices
        .iter()
        .flat_map(|d| std::iter::repeat_n(d.clone(), options.jobs_per_device.max(1)))
        .collect();
    if to_run > 0 {
        on_event(&SweepEvent::Started {
            sweep: sweep.name.clone(),
            configs: study.as_ref().map_or(plan.expansion.points.len(), |s| s.budget as usize),
            folds: plan.folds.folds,
            jobs_total,
            already_done: store.count_jobs(sweep_id, JobStatus::Done, &filter)?,
            to_run,
            slots: slot_devices.len(),
            devices: options.devices.iter().map(ToString::to_string).collect(),
            shard: options.shard.map(|s| (s, all_jobs)),
        });
    }
    let launcher = Launcher::new(options, &store, &slot_devices)?;
    let mut run = SweepLoop {
        sweep_id,
        plan,
        options,
        filter: &filter,
        launcher,
        slots: (0..slot_devices.len()).map(|_| None).collect(),
        slot_devices,
        summary: RunSummary { jobs_total, ..Default::default() },
        durations: Vec::new(),
        interrupts_at_start: INTERRUPTS.load(Ordering::SeqCst),
        study,
        prune: if options.no_prune { None } else { sweep.search.prune },
    };
    run.run(&mut store, on_event)?;
    let mut summary = final_summary(&store, sweep_id, &filter, jobs_total)?;
    summary.ran = run.summary.ran;
    summary.interrupted = run.summary.interrupted;
    if INTERRUPTS.load(Ordering::SeqCst) > run.interrupts_at_start {
        summary.not_started = store.count_jobs(sweep_id, JobStatus::Pending, &filter)?;
    }
    on_event(&SweepEvent::Finished { summary });
    Ok(summary)
}

/// Done, failed and diverged as the database has them when the run ends. A rerun first
/// requeues failed jobs, so every failed one failed in this run (here or in another
/// coordinator): the exit code speaks for the whole sweep.
pub(super) fn final_summary(
    store: &Store,
    sweep_id: i64,
    filter: crate::store::JobFilter,
    jobs_total: usize,
) -> anyhow::Result<RunSummary> {
    Ok(RunSummary {
        jobs_total,
        done: store.count_jobs(sweep_id, JobStatus::Done, filter)?,
        failed: store.count_jobs(sweep_id, JobStatus::Failed, filter)?,
        diverged: store.count_jobs(sweep_id, JobStatus::Diverged, filter)?,
        pruned: store.count_jobs(sweep_id, JobStatus::Pruned, filter)?,
        ..Default::default()
    })
}
