//! foldsweep: hyperparameter sweeps with k-fold cross-validation for embedding-pair
//! regression, built for the DA5401 metric-learning challenge.
//!
//! The modules follow the flow of a sweep:
//! - [`data`]: records, the metric table, .npy matrices;
//! - [`text`]: text features (hashing, precomputed);
//! - [`cv`] and [`sampling`]: folds, sample weights, synthetic negatives;
//! - [`model`]: the bilinear + MLP model, heads and losses (burn, backend-generic);
//! - [`train`]: optimiser, schedules, the training loop, evaluation and checkpoints;
//! - [`job`]: one resolved config on one fold, end to end;
//! - [`search`]: random and TPE search, ASHA and racing pruners, parameter importance;
//! - [`serve`]: a live, read-only view of the results database in the browser;
//! - [`cli`]: the command line on top.

mod alloc;
pub mod backend;
#[allow(clippy::print_stdout)] // the command line is the one place that prints results
pub mod cli;
pub mod config;
pub mod cv;
pub mod data;
pub mod error;
pub mod features;
pub mod job;
pub mod model;
pub mod nn;
pub mod probe;
pub mod report;
pub mod results;
pub mod sampling;
pub mod search;
pub mod serve;
pub mod store;
pub mod sweep;
pub mod text;
pub mod train;
pub mod util;
