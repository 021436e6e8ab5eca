//! One file per command group; `cli::run` dispatches to them.

pub(crate) mod export;
pub(crate) mod results;
pub(crate) mod run;
pub(crate) mod tools;

pub(crate) use export::export;
pub(crate) use results::{compare, results};
pub(crate) use run::run_sweep;
pub(crate) use tools::{embed, finetune, slurm, train};
