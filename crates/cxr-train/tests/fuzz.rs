//! Property-based fuzzing of the training config parser (see `tests/fuzz-support/mutate.rs`
//! at the workspace root): `TrainConfig::from_toml_over(&TrainConfig::demo(), text)` on
//! mutations of valid config files and arbitrary bytes, and `TrainConfig::set` on arbitrary
//! and mutated `key=value` overrides.
//!
//! Property: no panic (a config or an error); a config that parses passes `validate`, and
//! serialising it and reading that back gives the same config.
//!
//! Seeds: `tests/fuzz-corpus/config/`, written by [`seed_files`] under `FUZZ_WRITE_SEEDS=1` (the presets as TOML and a
//! small override file) and `tests/fuzz-corpus/set/` (overrides).
//! `PROPTEST_CASES=100000 cargo test -p cxr-train --test fuzz` runs longer than CI.

#[path = "../../../tests/fuzz-support/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};

use cxr_train::TrainConfig;
use proptest::prelude::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn seed_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let toml_of = |c: &TrainConfig| toml::to_string(c).unwrap().into_bytes();
    vec![
        ("config", "demo.toml", toml_of(&TrainConfig::demo())),
        (
            "config",
            "paper.toml",
            toml_of(&TrainConfig::preset("paper").unwrap()),
        ),
        (
            "config",
            "override.toml",
            b"[loop]\nbatch_size = 8\n\n[data]\nviews = \"all\"\nuncertain = \"positive\"\n"
                .to_vec(),
        ),
        ("set", "batch_size", b"loop.batch_size=16".to_vec()),
        ("set", "root", b"data.root=/mnt/data/mimic".to_vec()),
        ("set", "views", b"data.views = \"frontal\"".to_vec()),
    ]
}

/// The presets change as the project does, so the committed seeds are checked by parsing,
/// not byte for byte; `FUZZ_WRITE_SEEDS=1` rewrites them from the current presets.
#[test]
fn seeds_parse() {
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1") {
        mutate::check_seeds(&corpus(), &seed_files());
    }
    for text in mutate::seeds(&corpus().join("config")) {
        let text = String::from_utf8(text).unwrap();
        TrainConfig::from_toml_over(&TrainConfig::demo(), &text).unwrap();
    }
    for set in mutate::seeds(&corpus().join("set")) {
        TrainConfig::demo()
            .set(std::str::from_utf8(&set).unwrap())
            .unwrap();
    }
}

const TOML_TOKENS: &[&[u8]] = &[
    b"=",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b".",
    b"\"",
    b"'",
    b"\"\"\"",
    b"#",
    b"\n",
    b",",
    b"{",
    b"}",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1e308",
    b"inf",
    b"nan",
    b"-0.0",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"1979-05-27",
    b"loop",
    b"data",
    b"model",
    b"mixture",
    b"loss",
    b"method",
    b"batch_size",
    b"epochs",
    b"seed",
];

/// A config that parsed must validate and survive a TOML round trip.
fn round_trips(cfg: &TrainConfig) -> Result<(), TestCaseError> {
    cfg.validate()
        .map_err(|e| TestCaseError::fail(format!("parsed but invalid: {e}")))?;
    let text = toml::to_string(cfg).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let back = TrainConfig::from_toml_over(&TrainConfig::demo(), &text)
        .map_err(|e| TestCaseError::fail(format!("{e} reading back\n{text}")))?;
    prop_assert_eq!(toml::to_string(&back).unwrap(), text);
    Ok(())
}

proptest! {
    #![proptest_config(mutate::config(5000))]

    #[test]
    fn from_toml_never_panics(text in mutate::text_input(mutate::seeds(&corpus().join("config")), TOML_TOKENS)) {
        if let Ok(cfg) = TrainConfig::from_toml_over(&TrainConfig::demo(), &text) {
            round_trips(&cfg)?;
        }
    }

    #[test]
    fn set_never_panics(
        assignment in prop_oneof![
            mutate::text_input(mutate::seeds(&corpus().join("set")), TOML_TOKENS),
            any::<String>(),
            "[a-z_.]{0,24}=[ -~]{0,16}",
        ],
    ) {
        let mut cfg = TrainConfig::demo();
        if cfg.set(&assignment).is_ok() {
            round_trips(&cfg)?;
        }
    }
}
