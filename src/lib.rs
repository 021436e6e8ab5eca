//! foldsweep: hyperparameter sweeps with k-fold cross-validation for embedding-pair
//! regression, built for the DA5401 metric-learning challenge.
//!
//! The module map, in layers from the bottom (a module imports only from its own layer or
//! below; ARCHITECTURE.md explains each, tests/architecture.rs enforces it):
//! 1. [`error`], [`util`], [`backend`]: the error type, small helpers, burn backends;
//! 2. [`config`], [`search`]: the config schema; search maths (TPE, ASHA, racing);
//! 3. [`data`]: records, the metric table, .npy matrices;
//! 4. [`nn`]: dropout, gradient norm and kernels shared by the encoder and the model;
//! 5. [`text`], [`cv`], [`sampling`], [`probe`]: text features, folds, weights and synthetic
//!    negatives, validation probes;
//! 6. [`model`]: the bilinear + MLP model, heads and losses; 7. [`train`]: the training loop;
//! 8. [`job`]: one config on one fold, on a device; 9. [`store`]: the SQLite results database;
//! 10. [`results`]: summaries, criteria and the objective; 11. [`sweep`]: the sweep runner;
//! 12. [`report`], [`serve`]: what people read; 13. [`cli`]: the command line on top.

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
