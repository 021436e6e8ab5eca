//! The command line: argument parsing, progress output and exit codes. Thin on purpose:
//! all real work lives in the library modules.

mod args;
mod cmd;
mod notices;
mod progress;
mod resolve;

use args::{Cli, Command};
use cmd::{compare, embed, export, finetune, results, run_sweep, slurm, status, train};

use std::process::ExitCode;

use clap::Parser;

use crate::error::Error;

pub use crate::error::{EXIT_BAD_INPUT, EXIT_FAILED};

use crate::report::{self};
use crate::store::Store;

/// What a command returns: its exit code, or the error that decides one.
type CommandResult = Result<ExitCode, Error>;

/// Library errors name the concept (`fold`); on the command line it is a flag (`--fold`).
const FLAGS: &[(&str, &str)] = &[
    ("fold", "--fold"),
    ("config", "--config"),
    ("test", "--test"),
    ("test_embeddings", "--test-embeddings"),
    ("baseline", "--baseline"),
    ("sweep", "--sweep"),
    ("device", "--device"),
    ("devices", "--devices"),
    ("out_dir", "--out-dir"),
    ("precision", "--precision"),
    ("no_token", "--no-token"),
];

/// Parses the command line, runs it and maps errors to exit codes.
pub fn main() -> ExitCode {
    notices::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if prints_a_report(&cli.command) {
        end_quietly_on_a_closed_pipe();
    }
    match run(cli) {
        Ok(code) => code,
        Err(mut error) => {
            name_flags(&mut error);
            eprintln!("error: {error}");
            ExitCode::from(error.process_exit_code())
        }
    }
}

/// Commands whose whole job is to print: `results | head` closing the pipe ends them, as
/// it ends other Unix tools, instead of a panic in `println!`. A sweep, a worker or the server
/// keep Rust's default (a write error), so a closed stdout never kills work in flight.
fn prints_a_report(command: &Command) -> bool {
    !matches!(command, Command::Run(_) | Command::Worker { .. } | Command::Serve(_))
}

/// The worker's side of the protocol: each finished epoch is one JSON line on stdout. A closed
/// pipe means the coordinator is gone: stop rather than train for nobody.
fn report_epoch_to_coordinator(epoch: &crate::train::EpochLog) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let line = serde_json::to_string(epoch).expect("an epoch log serializes");
    if writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_err() {
        std::process::exit(EXIT_FAILED as i32);
    }
}

fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Renames a library concept in an input error to the flag that sets it.
fn name_flags(error: &mut Error) {
    if let Some(input) = error.input_mut() {
        let flag = FLAGS.iter().find(|(concept, _)| input.field.as_deref() == Some(*concept));
        if let Some((_, flag)) = flag {
            input.field = Some(flag.to_string());
        }
    }
}

fn run(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Run(args) => run_sweep(args),
        Command::Results(args) => results(args),
        Command::Status(args) => status(args),
        Command::Show(args) => {
            let store = Store::open_existing(&args.db)?;
            print!("{}", report::show::show(&store, &args.config_id)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare(args) => compare(args),
        Command::Export(args) => export(args),
        Command::BenchEpoch(args) => {
            let o = crate::job::bench::EpochBench {
                rank: args.rank,
                max_steps: args.max_steps,
                ..Default::default()
            };
            println!("{}", crate::job::bench_epoch_on(&args.device, args.precision, &o)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let store = Store::open_existing(&args.db)?;
            let (sweep_id, name) = store.resolve_sweep(args.sweep.as_deref())?;
            let (trials, space) = crate::sweep::study::report_trials(&store, sweep_id)?;
            let html = report::html::render_with_trials(&store, sweep_id, &trials, space.as_ref())?;
            crate::util::write_atomic(&args.out, html.as_bytes())?;
            println!("wrote the report of sweep {name:?} to {}", args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let options = crate::serve::ServeOptions {
                db: args.db,
                addr: args.addr,
                token: args.token,
                workers: args.workers,
            };
            let access =
                crate::serve::Access { no_token: args.no_token, allow_hosts: args.allow_host };
            let limits = crate::serve::Limits::default();
            let server = crate::serve::Server::bind(options, access, limits)?;
            print!("{}", server.announcement()?);
            server.run_with(|event| match event {
                crate::serve::ServeEvent::ReadFailed { request, error } => {
                    eprintln!("foldsweep serve: {request}: {error}")
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => train(args),
        Command::Merge(args) => {
            let summary = crate::sweep::merge::merge(&args.shards, &args.into)?;
            println!(
                "merged {} shard(s) into {}: {} jobs added, {} already there{}",
                summary.shards,
                args.into.display(),
                summary.jobs_added,
                summary.jobs_already_there,
                match summary.jobs_left_to_live {
                    0 => String::new(),
                    n => format!(", {n} running under a live coordinator left to it"),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Slurm(args) => slurm(args),
        Command::Embed(args) => embed(args),
        Command::Finetune(args) => finetune(args),
        Command::Worker { job_file } => {
            crate::sweep::worker::run_worker(&job_file, &mut report_epoch_to_coordinator)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
