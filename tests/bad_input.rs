//! Every kind of bad input through the real binary: exit code 2, no panic, and a message
//! that names the file, the record and the field.

use crate::common::{assert_bad_input, f32_bytes, npy_bytes, Scratch};

/// Replaces the training file with `records` (a JSON text) and runs `train`.
fn train_with_records(records: &str) -> crate::common::Run {
    let s = Scratch::new();
    s.write("train_data.json", records);
    s.train()
}

fn record(fields: &str) -> String {
    format!(
        r#"[{{"metric_name": "truthfulness", "score": "9.0", "user_prompt": "p", "response": "r", "system_prompt": null}}, {fields}]"#
    )
}

#[test]
fn train_file_that_is_not_json() {
    assert_bad_input(
        &train_with_records("metric_name,score\n"),
        &["train_data.json", "not valid JSON", "line 1"],
    );
}

#[test]
fn train_file_truncated() {
    let s = Scratch::new();
    let full = s.read("train_data.json").into_bytes();
    // At a character boundary, and inside a multi-byte (Devanagari) character.
    let boundary = (full.len() / 2..full.len()).find(|&i| full[i].is_ascii()).unwrap();
    let inside = (full.len() / 2..full.len()).find(|&i| full[i] >= 0xc0).unwrap() + 1;
    for cut in [boundary, inside] {
        s.write("train_data.json", &full[..cut]);
        assert_bad_input(&s.train(), &["train_data.json", "truncated JSON"]);
    }
}

#[test]
fn train_file_with_invalid_utf8() {
    let s = Scratch::new();
    let mut bytes = s.read("train_data.json").into_bytes();
    let at = bytes.len() / 3;
    bytes[at] = 0xff;
    s.write("train_data.json", bytes);
    assert_bad_input(&s.train(), &["train_data.json", "invalid UTF-8 at byte"]);
}

#[test]
fn train_file_that_is_not_a_list() {
    assert_bad_input(
        &train_with_records(r#"{"metric_name": "x"}"#),
        &["train_data.json", "expected a JSON list"],
    );
}

#[test]
fn record_that_is_not_an_object() {
    assert_bad_input(
        &train_with_records(&record("42")),
        &["train_data.json", "record 1", "expected an object"],
    );
}

#[test]
fn record_without_metric_name() {
    let out =
        train_with_records(&record(r#"{"score": "9.0", "user_prompt": "p", "response": "r"}"#));
    assert_bad_input(&out, &["train_data.json", "record 1", "field `metric_name`", "missing"]);
}

#[test]
fn record_without_score() {
    let out = train_with_records(&record(
        r#"{"metric_name": "truthfulness", "user_prompt": "p", "response": "r"}"#,
    ));
    assert_bad_input(&out, &["train_data.json", "record 1", "field `score`", "missing"]);
}

#[test]
fn score_that_is_not_a_number() {
    let out = train_with_records(&record(r#"{"metric_name": "truthfulness", "score": "high"}"#));
    assert_bad_input(&out, &["record 1", "field `score`", "not a number"]);
    let out = train_with_records(&record(r#"{"metric_name": "truthfulness", "score": [9]}"#));
    assert_bad_input(&out, &["record 1", "field `score`", "not a number"]);
}

#[test]
fn score_outside_0_to_10() {
    for score in [r#""10.5""#, "-1", "11"] {
        let out = train_with_records(&record(&format!(
            r#"{{"metric_name": "truthfulness", "score": {score}}}"#
        )));
        assert_bad_input(&out, &["record 1", "field `score`", "outside [0, 10]"]);
    }
}

#[test]
fn score_nan_or_infinite() {
    for score in [r#""NaN""#, r#""nan""#, r#""inf""#] {
        let out = train_with_records(&record(&format!(
            r#"{{"metric_name": "truthfulness", "score": {score}}}"#
        )));
        assert_bad_input(&out, &["record 1", "field `score`", "outside [0, 10]"]);
    }
}

#[test]
fn text_field_of_the_wrong_type() {
    let out = train_with_records(&record(
        r#"{"metric_name": "truthfulness", "score": 9, "response": 5}"#,
    ));
    assert_bad_input(&out, &["record 1", "field `response`", "expected a string or null"]);
}

#[test]
fn metric_name_not_in_the_metric_names_file() {
    let out = train_with_records(&record(r#"{"metric_name": "no_such_metric", "score": 9}"#));
    assert_bad_input(
        &out,
        &[
            "train_data.json",
            "record 1",
            "field `metric_name`",
            "unknown metric \"no_such_metric\"",
        ],
    );
}

#[test]
fn duplicate_metric_names() {
    let s = Scratch::new();
    let mut names: Vec<String> = serde_json::from_str(&s.read("metric_names.json")).unwrap();
    names[5] = names[2].clone();
    s.write("metric_names.json", serde_json::to_string(&names).unwrap());
    assert_bad_input(
        &s.train(),
        &["metric_names.json", "record 5", "duplicate metric name", "also at index 2"],
    );
}

#[test]
fn embeddings_with_a_different_row_count_than_the_names() {
    let s = Scratch::new();
    s.write("metric_name_embeddings.npy", npy_bytes("<f4", &[11, 16], &f32_bytes(&[0.1; 11 * 16])));
    assert_bad_input(&s.train(), &["metric_name_embeddings.npy", "has 11 rows", "names 12"]);
}

#[test]
fn embeddings_that_are_not_float() {
    let s = Scratch::new();
    s.write("metric_name_embeddings.npy", npy_bytes("<i4", &[12, 16], &[0u8; 12 * 16 * 4]));
    assert_bad_input(
        &s.train(),
        &["metric_name_embeddings.npy", "expected float32 or float64", "<i4"],
    );
}

#[test]
fn embeddings_with_nan_or_infinity() {
    for bad in [f32::NAN, f32::INFINITY] {
        let s = Scratch::new();
        let mut values = vec![0.25f32; 12 * 16];
        values[3 * 16 + 7] = bad;
        s.write("metric_name_embeddings.npy", npy_bytes("<f4", &[12, 16], &f32_bytes(&values)));
        assert_bad_input(
            &s.train(),
            &["metric_name_embeddings.npy", "record 3", "non-finite value", "column 7"],
        );
    }
}

#[test]
fn embeddings_file_that_is_not_npy() {
    let s = Scratch::new();
    s.write("metric_name_embeddings.npy", "not an array");
    assert_bad_input(&s.train(), &["metric_name_embeddings.npy", "not a valid .npy file"]);
}

#[test]
fn precomputed_text_embeddings_with_the_wrong_row_count() {
    let s = Scratch::new();
    s.write("text.npy", npy_bytes("<f4", &[7, 8], &f32_bytes(&[0.5; 56])));
    let config = crate::common::QUICK_CONFIG.replace(
        "encoder = \"hashing\"",
        "encoder = \"precomputed\"\ntrain_embeddings = \"text.npy\"",
    );
    s.write("config.toml", config);
    assert_bad_input(&s.train(), &["text.npy", "has 7 rows", "400 records"]);
}

#[test]
fn config_that_is_not_toml() {
    let s = Scratch::new();
    s.write("config.toml", "[data\ntrain = 1\n");
    assert_bad_input(&s.train(), &["config.toml", "line 1"]);
}

#[test]
fn config_with_an_unknown_key_names_key_and_line() {
    let s = Scratch::new();
    s.write(
        "config.toml",
        crate::common::QUICK_CONFIG.replace("epochs = 2", "epochs = 2\nlearning_rate = 0.1"),
    );
    let line = crate::common::QUICK_CONFIG.lines().position(|l| l == "epochs = 2").unwrap() + 2;
    assert_bad_input(
        &s.train(),
        &["config.toml", &format!("line {line}"), "unknown field `learning_rate`"],
    );
}

#[test]
fn config_with_a_value_of_the_wrong_type() {
    let s = Scratch::new();
    s.write("config.toml", crate::common::QUICK_CONFIG.replace("epochs = 2", "epochs = \"two\""));
    assert_bad_input(&s.train(), &["config.toml", "line", "epochs = \"two\"", "invalid type"]);
}

#[test]
fn config_with_an_invalid_model_loss_pair_lists_the_valid_ones() {
    let s = Scratch::new();
    s.write(
        "config.toml",
        crate::common::QUICK_CONFIG.replace("loss = \"hybrid\"", "loss = \"ordinal\""),
    );
    assert_bad_input(
        &s.train(),
        &["config.toml", "field `train.loss`", "valid pairs", "ordinal with ordinal"],
    );
}

#[test]
fn fold_out_of_range() {
    let s = Scratch::new();
    let out = s.run(&["train", "config.toml", "--fold", "5", "--out", "out"]);
    assert_bad_input(&out, &["--fold", "fold 5 does not exist"]);
}

#[test]
fn missing_config_file() {
    let s = Scratch::new();
    let out = s.run(&["train", "nope.toml", "--fold", "0"]);
    assert_bad_input(&out, &["nope.toml", "cannot read config"]);
}

#[test]
fn usage_error_exits_2() {
    let s = Scratch::new();
    let out = s.run(&["train", "config.toml"]);
    assert_bad_input(&out, &["--fold"]);
}

#[test]
fn unknown_or_unavailable_device_exits_2() {
    let s = Scratch::new();
    let device = if cfg!(feature = "cuda") { "tpu:0" } else { "cuda:0" };
    let out = s.run(&["train", "config.toml", "--fold", "0", "--device", device]);
    assert_bad_input(&out, &["--device", device, "not available"]);
}

// ---- [text] finetune --------------------------------------------------------------------

/// QUICK_CONFIG with its `[text]` section's `encoder = "hashing"` line replaced by `text`.
fn train_with_text(text: &str) -> crate::common::Run {
    let s = Scratch::new();
    s.write("config.toml", crate::common::QUICK_CONFIG.replace("encoder = \"hashing\"", text));
    s.train()
}

#[test]
fn finetune_without_the_transformer_encoder_names_text_finetune() {
    let out = train_with_text("encoder = \"hashing\"\nfinetune = {}");
    assert_bad_input(&out, &["config.toml", "field `text.finetune`", "encoder = \"transformer\""]);
}

#[test]
fn finetune_values_out_of_range_name_their_key() {
    let transformer = "encoder = \"transformer\"\nmodel = \"no-model-needed\"\n";
    for (setting, field) in [
        ("batch_size = 1", "text.finetune.batch_size"),
        ("epochs = 0", "text.finetune.epochs"),
        ("lr = 0.0", "text.finetune.lr"),
        ("warmup_fraction = 1.0", "text.finetune.warmup_fraction"),
    ] {
        let out = train_with_text(&format!("{transformer}finetune = {{ {setting} }}"));
        assert_bad_input(&out, &["config.toml", &format!("field `{field}`")]);
    }
    let out = train_with_text(&format!("{transformer}finetune = {{ batchsize = 8 }}"));
    assert_bad_input(&out, &["config.toml", "unknown field `batchsize`", "line"]);
}

#[test]
fn embeddings_whose_shape_product_overflows() {
    // 2^40 x 2^40 values overflow u64; 2^31 x 2^31 float32 values overflow the byte count.
    for shape in [[1usize << 40, 1 << 40], [1 << 31, 1 << 31], [usize::MAX, 2]] {
        let s = Scratch::new();
        s.write("metric_name_embeddings.npy", npy_bytes("<f4", &shape, &f32_bytes(&[0.5; 16])));
        assert_bad_input(&s.train(), &["metric_name_embeddings.npy", "shape"]);
    }
}

#[test]
fn embeddings_with_no_columns() {
    let s = Scratch::new();
    s.write("metric_name_embeddings.npy", npy_bytes("<f4", &[12, 0], &[]));
    assert_bad_input(&s.train(), &["metric_name_embeddings.npy", "0 columns"]);
}

#[test]
fn precomputed_text_embeddings_with_no_columns() {
    let s = Scratch::new();
    s.write("text.npy", npy_bytes("<f4", &[400, 0], &[]));
    let config = crate::common::QUICK_CONFIG.replace(
        "encoder = \"hashing\"",
        "encoder = \"precomputed\"\ntrain_embeddings = \"text.npy\"",
    );
    s.write("config.toml", config);
    assert_bad_input(&s.train(), &["text.npy", "0 columns"]);
}
