//! `[text] finetune = {...}` in sweeps, through the real binary: the model is fine-tuned once
//! per sweep (by the coordinator, before any job), cached under
//! `$FOLDSWEEP_CACHE/finetuned/<key>/`, reused by later runs, and keyed by its settings.
//! Two steps on the tiny fixture model keep each run to a few seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{Run, Scratch, TINY_SWEEP};
use foldsweep::config::FinetuneConfig;
use foldsweep::text::transformer::{finetune, finetune_key, FinetuneSettings, SentenceEncoder};

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

/// foldsweep with its cache in the scratch folder; expects exit code 0.
fn run(s: &Scratch, args: &[&str]) -> Run {
    s.command().args(args).env("FOLDSWEEP_CACHE", s.path("cache")).run()
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

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "same shape");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
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
    first.check(
        first.stderr().matches("fine-tuning ").count() == 1,
        "one fine-tuning for two configs",
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
    // The cached folder is what the library's fine-tuning makes of the same model, texts and
    // settings (tests/encoder.rs holds that to sentence-transformers' step by step): a sweep
    // that fine-tuned other texts, with other settings, or not at all fails here.
    let sample = &texts[..16];
    let library = tempfile::tempdir().unwrap();
    finetune(&model(), &texts, library.path(), &settings).expect("fine-tune");
    let (cached, expected) = (embeddings(folder, sample), embeddings(library.path(), sample));
    assert_eq!(cached.len(), expected.len());
    let diff = max_abs_diff(&cached, &expected);
    assert!(diff <= 1e-6, "the sweep's model differs from the library's: max |diff| {diff:.3e}");
    let moved = max_abs_diff(&cached, &embeddings(&model(), sample));
    assert!(moved > 1e-4, "fine-tuning changed the embeddings: max |diff| {moved:.3e}");

    let before = contents(folder);
    let second = run(&s, &["run", "sweep.toml", "--db", "b.db"]);
    let err = second.stderr();
    second.check(
        err.contains("reused the fine-tuned model") && !err.contains("fine-tuning "),
        "the second run reuses the model",
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
    out.check(out.stdout().contains("4 configs x 2 folds"), "2 seeds x 2 model/loss pairs");
    out.check(out.stderr().matches("fine-tuning ").count() == 2, "one fine-tuning per seed");
    assert_eq!(finetuned_entries(&s).len(), 2);

    s.write("sweep.toml", finetune_sweep(FINETUNE));
    let again = run(&s, &["run", "sweep.toml", "--dry-run"]);
    let err = again.stderr();
    again.check(err.contains("reused") && !err.contains("fine-tuning "), "seed 42 is reused");
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
    let out = s
        .command()
        .args(["run", "sweep.toml", "--dry-run"])
        .env("FOLDSWEEP_CACHE", s.path("cache"))
        .output();
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
}

/// Regression (issue 22): `finetune = {}` was checked against `FinetuneSettings::default()`,
/// two defaults of the same code, which agree whatever the recipe becomes. The README's recipe
/// (`finetune` command and `[text] finetune` keys) is pinned here as literals.
#[test]
fn an_empty_finetune_table_is_the_readme_recipe() {
    let config = foldsweep::config::Config::parse(&crate::common::QUICK_CONFIG.replace(
        "encoder = \"hashing\"",
        "encoder = \"transformer\"\nmodel = \"m\"\nfinetune = {}",
    ))
    .unwrap();
    let recipe = config.text.finetune.expect("finetune = {} is set").settings();
    let readme = FinetuneSettings {
        epochs: 3,
        batch_size: 64,
        lr: 2e-5,
        warmup_fraction: 0.1,
        scale: 20.0,
        weight_decay: 0.01,
        max_grad_norm: Some(1.0),
        seed: 42,
        max_steps: None,
    };
    assert_eq!(recipe, readme, "the README's recipe");
    assert_eq!(FinetuneSettings::default(), readme, "the `finetune` command's defaults");
}
