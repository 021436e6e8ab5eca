#![allow(clippy::print_stdout)] // a bench prints its measurement
//! Seconds per training epoch of the report's model on CPU (not a test: run it on a quiet
//! machine; scripts/bench.sh runs it next to the PyTorch reference).
//!
//!     cargo bench --bench epoch -- [--rows 5000] [--batch 64] [--rank 0] [--dim 768]
//!                                  [--hidden 512,256,128] [--max-steps N]

use foldsweep::backend::{cpu_device, CpuTrain};
use foldsweep::job::bench::{run, EpochBench};

fn options() -> EpochBench {
    let mut o = EpochBench::default();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--rows" => o.rows = value.parse().expect("--rows N"),
            "--batch" => o.batch = value.parse().expect("--batch N"),
            "--rank" => o.rank = value.parse().expect("--rank R"),
            "--dim" => o.dim = value.parse().expect("--dim D"),
            "--hidden" => {
                o.hidden = value.split(',').map(|v| v.parse().expect("--hidden a,b,c")).collect()
            }
            "--max-steps" => o.max_steps = Some(value.parse().expect("--max-steps N")),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() {
    println!("{}", run::<CpuTrain>(&options(), &cpu_device(), "cpu"));
}
