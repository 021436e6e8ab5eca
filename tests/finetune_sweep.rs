//! `[text] finetune = {...}` in sweeps, through the real binary: the model is fine-tuned once
//! per sweep (by the coordinator, before any job), cached under
//! `$FOLDSWEEP_CACHE/finetuned/<key>/`, reused by later runs, and keyed by its settings.
//! Two steps on the tiny fixture model keep each run to a few seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{stderr, stdout, Scratch, TINY_SWEEP};
use foldsweep::config::FinetuneConfig;
use foldsweep::text::transformer::{finetune_key, SentenceEncoder};

/// A learning rate large enough, and no warm-up (whose first step has lr 0), so that two
/// steps visibly move the embeddings.
const FINETUNE: &str =
    "finetune = { max_steps = 2, batch_size = 8, lr = 1e-3, warmup_fraction = 0.0 }";

fn model() -> PathBuf {
    crate::common::fixture("encoder/tiny-xlmr")
}

/// TINY_SWEEP (two configs) on 2 folds, its texts encoded by the fine-tuned tiny-xlmr.
fn finetune_sweep(finetune: &str) -> String {
    let text =
        format!("encoder = \"transformer\"\nmodel = {:?}\n{finetune}", model().to_str().unwrap());
    TINY_SWEEP.replace("encoder = \"hashing\"\ndim = 64", &text).replace("folds = 5", "folds = 2")
}

fn run(s: &Scratch, args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldsweep"))
        .args(args)
        .current_dir(s.dir.path())
        .env("FOLDSWEEP_CACHE", s.path("cache"))
        .output()
        .expect("run foldsweep");
    assert!(out.status.success(), "{args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
    out
}

/// Every entry of cache/finetuned (fine-tuned folders and any leftover partial ones).
fn finetuned_entries(s: &Scratch) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(s.path("cache/finetuned")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    entries
}

/// Relative path -> bytes of every file under `dir`.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

fn worker_logs(s: &Scratch, jobs_dir: &str) -> Vec<String> {
    std::fs::read_dir(s.path(jobs_dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".stderr.log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn embeddings(model: &Path, texts: &[String]) -> Vec<f32> {
    SentenceEncoder::load(model)
        .expect("load model")
        .encode(texts, 8, &mut |_, _| {})
        .expect("encode")
        .data
}

#[test]
fn a_sweep_finetunes_once_and_later_runs_reuse_the_model() {
    let s = Scratch::new();
    s.write("sweep.toml", finetune_sweep(FINETUNE));
    let texts = foldsweep::text::finetune_texts(&foldsweep::config::DataConfig {
        train: s.path("train_data.json"),
        test: Some(s.path("test_data.json")),
        metric_names: s.path("metric_names.json"),
        metric_embeddings: s.path("metric_name_embeddings.npy"),
    })
    .unwrap();
    assert_eq!(texts.len(), 600, "400 train and 200 test texts");
    let settings = FinetuneConfig {
        max_steps: Some(2),
        batch_size: 8,
        lr: 1e-3,
        warmup_fraction: 0.0,
        ..FinetuneConfig::default()
    }
    .settings();
    let key = finetune_key(&model(), &texts, &settings).unwrap();
    // What a crash mid-training leaves behind: it must never be taken for the model.
    let leftover = s.path(&format!("cache/finetuned/.partial-{key}-1-0"));
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("model.safetensors"), b"half a file").unwrap();

    let first = run(&s, &["run", "sweep.toml", "--db", "a.db"]);
    assert_eq!(
        stderr(&first).matches("fine-tuning ").count(),
        1,
        "one fine-tuning for two configs:\n{}",
        stderr(&first)
    );

    std::fs::remove_dir_all(&leftover).unwrap();
    let entries = finetuned_entries(&s);
    assert_eq!(
        entries,
        vec![s.path(&format!("cache/finetuned/{key}"))],
        "one complete folder, keyed by model, settings and texts"
    );
    let folder = &entries[0];
    for log in worker_logs(&s, "a.jobs") {
        assert!(
            log.contains("reused the fine-tuned model") && !log.contains("fine-tuning "),
            "jobs only read the cache:\n{log}"
        );
    }
    let sample = &texts[..16];
    let diff = embeddings(folder, sample)
        .iter()
        .zip(embeddings(&model(), sample))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff > 1e-4, "fine-tuning changed the embeddings: max |diff| {diff:.3e}");

    let before = contents(folder);
    let second = run(&s, &["run", "sweep.toml", "--db", "b.db"]);
    assert!(
        stderr(&second).contains("reused the fine-tuned model")
            && !stderr(&second).contains("fine-tuning "),
        "{}",
        stderr(&second)
    );
    assert_eq!(finetuned_entries(&s), entries, "no new folder");
    assert!(contents(folder) == before, "the folder's files are unchanged");
}

#[test]
fn a_changed_finetune_setting_makes_a_new_model_and_the_grid_can_vary_it() {
    let s = Scratch::new();
    // seed 42 is the default: spelling it out keeps the key (and the config id).
    let grid = "[grid]\n\"text.finetune.seed\" = [42, 7]\n";
    s.write("sweep.toml", finetune_sweep(FINETUNE).replace("[grid]\n", grid));
    let out = run(&s, &["run", "sweep.toml", "--dry-run"]);
    assert!(
        stdout(&out).contains("4 configs x 2 folds"),
        "2 seeds x 2 model/loss pairs:\n{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out).matches("fine-tuning ").count(), 2, "{}", stderr(&out));
    assert_eq!(finetuned_entries(&s).len(), 2);

    s.write("sweep.toml", finetune_sweep(FINETUNE));
    let again = run(&s, &["run", "sweep.toml", "--dry-run"]);
    assert!(
        stderr(&again).contains("reused") && !stderr(&again).contains("fine-tuning "),
        "{}",
        stderr(&again)
    );
    assert_eq!(finetuned_entries(&s).len(), 2, "seed 42 was already there");
}

#[test]
fn a_finetune_grid_value_out_of_range_names_the_grid_key() {
    let s = Scratch::new();
    s.write(
        "sweep.toml",
        finetune_sweep("finetune = {}")
            .replace("[grid]\n", "[grid]\n\"text.finetune.batch_size\" = [8, 1]\n"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldsweep"))
        .args(["run", "sweep.toml", "--dry-run"])
        .current_dir(s.dir.path())
        .env("FOLDSWEEP_CACHE", s.path("cache"))
        .output()
        .unwrap();
    crate::common::assert_bad_input(&out, &["grid key `text.finetune.batch_size`", "at least 2"]);
    assert!(
        !s.path("cache/finetuned").exists(),
        "nothing fine-tuned before the grid is known to be valid"
    );
}

#[test]
fn processes_racing_on_one_key_leave_one_complete_folder() {
    let cache = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..12).map(|i| format!("text number {i}")).collect();
    let settings =
        FinetuneConfig { max_steps: Some(1), batch_size: 4, ..FinetuneConfig::default() }
            .settings();
    let folders: Vec<PathBuf> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    foldsweep::text::transformer::finetuned_model(
                        &model(),
                        &texts,
                        &settings,
                        cache.path(),
                    )
                    .unwrap()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(folders[0], folders[1], "both use the same folder");
    let entries: Vec<_> = std::fs::read_dir(cache.path().join("finetuned"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries, vec![folders[0].clone()], "the loser's copy is gone");
    SentenceEncoder::load(&folders[0]).expect("a complete model");
}

#[test]
fn configs_without_finetune_serialize_as_before() {
    // Config ids hash the serialized config: an unset `finetune` must not appear in it.
    let config = foldsweep::config::Config::parse(crate::common::QUICK_CONFIG).unwrap();
    let json = serde_json::to_value(&config).unwrap();
    assert!(json["text"].get("finetune").is_none(), "{json}");
    let with = config.text.clone();
    let with = foldsweep::config::TextConfig { finetune: Some(FinetuneConfig::default()), ..with };
    assert_eq!(
        with.finetune.unwrap().settings(),
        foldsweep::text::transformer::FinetuneSettings::default(),
        "`finetune = {{}}` is the recipe"
    );
}
