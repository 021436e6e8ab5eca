//! The integration tests, as one binary (one link of burn and tokenizers instead of ten):
//! each module drives the real `foldsweep` binary or the library on reference numbers.

mod common;

mod architecture;
mod atomic_files;
mod bad_input;
mod cli_regressions;
mod encoder;
mod export;
mod finetune_sweep;
mod full_disk;
mod overnight;
mod parity_f32;
mod parity_f64;
mod prototypes;
mod reduced_precision;
mod report_html;
mod search;
mod search_plots;
mod serve;
mod serve_safety;
mod shard;
mod shift;
mod signals;
mod store_regressions;
mod sweep;
mod training;
