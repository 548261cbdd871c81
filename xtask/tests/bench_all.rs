//! `cargo xtask bench all` end to end on tiny shapes, without Python: `--quick --no-reference`
//! runs every measurement of ours (it builds cxr-clip's `bench_clip` example through cargo
//! first, the test's main cost when that example is not built yet) and writes a section whose
//! table parses, with a figure for ours and "—" for every reference and ratio. A Python that
//! cannot run is refused before any work, naming `--python`.

#![cfg(unix)]

use std::process::Command;
use std::time::Instant;

/// The cells of the section's table rows (header and rule excluded).
fn table_rows(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .filter(|l| l.starts_with('|') && l.ends_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn quick_run_without_references_writes_a_parseable_section() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("section.md");
    let json = dir.path().join("bench.json");
    let start = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "bench",
            "all",
            "--quick",
            "--no-reference",
            "--threads",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running xtask bench all");
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench all failed:\n{stderr}");
    eprintln!("bench all --quick --no-reference took {secs:.1} s (example build included)");

    let section = std::fs::read_to_string(&out).unwrap();
    // Printed and written alike.
    assert!(String::from_utf8_lossy(&run.stdout).contains(section.trim()));
    let mut lines = section.lines();
    let title = lines.next().unwrap();
    let when = title
        .strip_prefix("## Run of ")
        .and_then(|w| w.strip_suffix(" UTC"))
        .unwrap_or_else(|| panic!("not a dated title: {title}"));
    // YYYY-MM-DD HH:MM
    assert_eq!(when.len(), 16, "{when}");
    assert!(when[..4].parse::<u32>().unwrap() >= 2024, "{when}");
    assert!(section.contains("--quick --no-reference"), "{section}");
    for key in [
        "- Machine: ",
        "- Load average (1, 5, 15 min): ",
        "- Commit: ",
    ] {
        assert!(section.contains(key), "no `{key}` line:\n{section}");
    }
    assert!(
        section.contains(" 2 threads on both sides"),
        "threads not recorded:\n{section}"
    );
    assert!(section.contains("| measurement | unit | ours | reference | ratio |"));

    let rows = table_rows(&section);
    // The step (total, forward, backward, memory) and its three variants (time, memory),
    // embedding and cluster.
    assert_eq!(rows.len(), 12, "{rows:?}");
    for variant in [
        "one backward() of the whole graph",
        "every block recomputed",
        "lowest 2 blocks a tower recomputed",
    ] {
        for what in ["forward + backward", "peak memory"] {
            let n = rows
                .iter()
                .filter(|r| r[0].contains(variant) && r[0].contains(what))
                .count();
            assert_eq!(n, 1, "{variant}, {what}: {rows:?}");
        }
    }
    for r in &rows {
        assert_eq!(r.len(), 5, "{r:?}");
        let ours: f64 = r[2]
            .parse()
            .unwrap_or_else(|_| panic!("ours is not a number: {r:?}"));
        assert!(ours > 0.0 && ours.is_finite(), "{r:?}");
        assert_eq!(r[3], "—", "{r:?}");
        assert_eq!(r[4], "—", "{r:?}");
        assert!(["s", "GiB", "images/s"].contains(&r[1].as_str()), "{r:?}");
    }
    let find = |needle: &str| {
        rows.iter()
            .find(|r| r[0].contains(needle))
            .unwrap_or_else(|| panic!("no row with `{needle}`: {rows:?}"))
    };
    assert_eq!(find("peak resident memory")[1], "GiB");
    assert_eq!(find("zero-shot image embedding")[1], "images/s");
    assert_eq!(find("xtask cluster")[1], "s");
    let step = find("training step");
    let total: f64 = step[2].parse().unwrap();
    let fwd: f64 = find("— forward")[2].parse().unwrap();
    let bwd: f64 = find("— backward")[2].parse().unwrap();
    // Rounded to 0.01 s each.
    assert!(
        (total - (fwd + bwd)).abs() <= 0.02,
        "{total} != {fwd} + {bwd}"
    );

    // The JSON holds the same figures, unrounded.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let jrows = v["rows"].as_array().unwrap();
    assert_eq!(jrows.len(), rows.len());
    assert!(jrows
        .iter()
        .all(|r| r["reference"].is_null() && r["ratio"].is_null()));
    assert_eq!(v["quick"], true);
    assert!(v["raw"]["cluster"]["ours_wall_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_python_that_cannot_run_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-python");
    let out = dir.path().join("section.md");
    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "all", "--quick", "--python"])
        .arg(&missing)
        .arg("--out")
        .arg(&out)
        .env_remove("CXR_PYTHON")
        .output()
        .expect("running xtask bench all");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("--python") && stderr.contains("--no-reference"),
        "{stderr}"
    );
    assert!(!out.exists(), "a section was written");
}
