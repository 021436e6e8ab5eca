//! Files that two writers replace at once (two shards on one shared folder, a result file
//! rewritten on a rerun) are replaced whole: a reader sees the old content or the new,
//! never a mix, and neither writer fails.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use foldsweep::backend::{cpu_device, Cpu};
use foldsweep::config::ModelKind;
use foldsweep::model::ModelSpec;
use foldsweep::train::checkpoint;

const ROUNDS: usize = 60;

/// Runs `write(writer, round)` from two threads and `read()` in a loop beside them until
/// both writers are done; returns how many reads happened.
fn race(write: impl Fn(usize, usize) + Sync, read: impl Fn() + Sync) -> usize {
    let done = AtomicBool::new(false);
    let mut reads = 0;
    thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|writer| {
                let write = &write;
                scope.spawn(move || (0..ROUNDS).for_each(|round| write(writer, round)))
            })
            .collect();
        let reader = scope.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                read();
                n += 1;
            }
            n
        });
        for writer in writers {
            if let Err(panic) = writer.join() {
                done.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(panic);
            }
        }
        done.store(true, Ordering::Relaxed);
        reads = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
    reads
}

fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !keep.contains(&name.as_str()))
        .collect()
}

#[test]
fn write_atomic_from_two_writers_never_tears_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    // Large enough that one write is many system calls.
    let contents: Vec<Vec<u8>> = [b'a', b'b'].iter().map(|&c| vec![c; 1 << 20]).collect();
    std::fs::write(&path, &contents[0]).unwrap();
    let reads = race(
        |writer, round| {
            foldsweep::util::write_atomic(&path, &contents[writer])
                .unwrap_or_else(|e| panic!("writer {writer}, round {round}: {e:#}"))
        },
        || {
            let read = std::fs::read(&path).expect("the file always exists");
            assert!(
                contents.contains(&read),
                "a reader saw a torn file: {} bytes, first {:?}, last {:?}",
                read.len(),
                read.first(),
                read.last()
            );
        },
    );
    assert!(reads > 0);
    assert_eq!(leftovers(dir.path(), &["result.json"]), Vec::<String>::new(), "temporary files");
}

#[test]
fn checkpoints_saved_by_two_writers_always_load() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("checkpoint");
    let device = cpu_device();
    // A full bilinear layer of 96^3 weights: a 3.5 MB file, written in many pieces.
    let spec = ModelSpec {
        kind: ModelKind::Standard,
        d_metric: 96,
        d_text: 96,
        d_bilinear: 96,
        bilinear_rank: 0,
        hidden_dims: vec![8],
        dropout: 0.0,
    };
    let models = [spec.init::<Cpu>(&device), spec.init::<Cpu>(&device)];
    checkpoint::save(&ckpt, &spec, &models[0]).unwrap();
    let reads = race(
        |writer, round| {
            checkpoint::save(&ckpt, &spec, &models[writer])
                .unwrap_or_else(|e| panic!("writer {writer}, round {round}: {e:#}"));
        },
        || {
            let (loaded, _) = checkpoint::load::<Cpu>(&ckpt, &device)
                .unwrap_or_else(|e| panic!("a reader loaded a torn checkpoint: {e:#}"));
            assert_eq!(loaded, spec);
        },
    );
    assert!(reads > 0);
    assert_eq!(
        leftovers(&ckpt, &["model.bin", "model.json"]),
        Vec::<String>::new(),
        "temporary files"
    );
}
