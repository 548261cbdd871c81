//! `curves.png`: a run's training curves from its `metrics.jsonl` (training loss and learning
//! rate per step, validation loss and macro AUC per epoch), redrawn at the end of every epoch;
//! and the comparison folder's `curves.png` with every method overlaid. Drawing is
//! `cxr_eval::plot_training_curves`; the file is written atomically.

use std::path::Path;

use cxr_eval::TrainingCurves;

use crate::error::IoContext;
use crate::files::write_atomic;
use crate::metrics::MetricsLine;
use crate::Result;

/// The figure's file name, in a run folder and in a comparison folder.
pub const CURVES_FILE: &str = "curves.png";

/// The curves of the run in `run_dir`, read from its `metrics.jsonl` (lines that do not parse,
/// such as one cut by a crash, are left out), named `name`.
pub fn read_curves(run_dir: &Path, name: &str) -> Result<TrainingCurves> {
    let path = run_dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).at(&path),
    };
    let mut c = TrainingCurves {
        name: name.to_string(),
        ..TrainingCurves::default()
    };
    for line in text.lines() {
        match serde_json::from_str::<MetricsLine>(line) {
            Ok(MetricsLine::Step(r)) => {
                c.train_loss.push((r.step as f64, f64::from(r.loss)));
                c.lr.push((r.step as f64, r.lr));
            }
            Ok(MetricsLine::Epoch(r)) => {
                let epoch = (r.epoch + 1) as f64;
                c.val_loss.push((epoch, r.val_loss));
                if let Some(auc) = r.val_macro_auc {
                    c.val_auc.push((epoch, auc));
                }
            }
            Ok(MetricsLine::Validation(_)) | Err(_) => {}
        }
    }
    Ok(c)
}

/// Draw `runs` into `out_dir/curves.png` (atomically).
pub fn write_curves(out_dir: &Path, runs: &[TrainingCurves], title: &str) -> Result<()> {
    let png = cxr_eval::plot_training_curves(runs, title)?;
    write_atomic(&out_dir.join(CURVES_FILE), &png)
}

/// Redraw a run's `curves.png` from its `metrics.jsonl`. A figure that cannot be drawn is a
/// warning, not an error: it must not stop a training run.
pub fn redraw_run(run_dir: &Path, name: &str) {
    let t0 = std::time::Instant::now();
    let drawn = read_curves(run_dir, name).and_then(|c| write_curves(run_dir, &[c], name));
    match drawn {
        Ok(()) => tracing::debug!(
            "{} drawn in {:.0} ms",
            run_dir.join(CURVES_FILE).display(),
            t0.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => tracing::warn!("{} not drawn in {}: {e}", CURVES_FILE, run_dir.display()),
    }
}

/// The comparison folder's `curves.png`: the methods' runs (`(name, run folder)`) overlaid.
/// Runs without metrics (the zero-shot method trains nothing) are left out; with none left,
/// nothing is drawn.
pub fn redraw_comparison(out_dir: &Path, runs: &[(&str, &Path)]) {
    let drawn = runs
        .iter()
        .map(|(name, dir)| read_curves(dir, name))
        .collect::<Result<Vec<_>>>()
        .and_then(|c| {
            let trained: Vec<_> = c
                .into_iter()
                .filter(|c| !c.train_loss.is_empty() || !c.val_loss.is_empty())
                .collect();
            if trained.is_empty() {
                return Ok(());
            }
            write_curves(out_dir, &trained, "Training curves, all methods")
        });
    if let Err(e) = drawn {
        tracing::warn!("{} not drawn in {}: {e}", CURVES_FILE, out_dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_lines_become_curves() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            r#"{"kind":"step","epoch":0,"step":0,"loss":2.5,"clip_loss":2.0,"metric_loss":0.5,"lr":0.001,"grad_norm":1.5,"images_per_sec":10.0}"#,
            r#"{"kind":"step","epoch":0,"step":1,"loss":2.0,"clip_loss":2.0,"metric_loss":null,"lr":0.002,"grad_norm":null,"images_per_sec":10.0}"#,
            r#"{"kind":"validation","epoch":0,"step":2,"val_macro_auc":0.6}"#,
            r#"{"kind":"epoch","epoch":0,"step":2,"train_loss":2.25,"val_loss":2.1,"val_macro_auc":0.61,"lr":0.002}"#,
            r#"{"kind":"epoch","epoch":1,"step":4,"train_loss":2.0,"val_loss":1.9,"val_macro_auc":null,"lr":0.002}"#,
            r#"{"kind":"step","epoch":2,"st"#,
        ];
        std::fs::write(dir.path().join("metrics.jsonl"), lines.join("\n")).unwrap();
        let c = read_curves(dir.path(), "m").unwrap();
        assert_eq!(c.name, "m");
        assert_eq!(c.train_loss, vec![(0.0, 2.5), (1.0, 2.0)]);
        assert_eq!(c.lr, vec![(0.0, 0.001), (1.0, 0.002)]);
        assert_eq!(c.val_loss, vec![(1.0, 2.1), (2.0, 1.9)]);
        assert_eq!(c.val_auc, vec![(1.0, 0.61)]);
        write_curves(dir.path(), &[c], "m").unwrap();
        let png = std::fs::read(dir.path().join(CURVES_FILE)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn a_comparison_overlays_the_trained_runs_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, zero_shot) = (dir.path().join("a"), dir.path().join("zero-shot"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&zero_shot).unwrap();
        redraw_comparison(dir.path(), &[("zero-shot", &zero_shot)]);
        assert!(!dir.path().join(CURVES_FILE).exists(), "nothing trained");
        std::fs::write(
            a.join("metrics.jsonl"),
            r#"{"kind":"epoch","epoch":0,"step":2,"train_loss":2.25,"val_loss":2.1,"val_macro_auc":0.61,"lr":0.002}"#,
        )
        .unwrap();
        redraw_comparison(dir.path(), &[("zero-shot", &zero_shot), ("a", &a)]);
        assert!(dir.path().join(CURVES_FILE).is_file());
    }

    #[test]
    fn a_run_without_metrics_has_no_curves() {
        let dir = tempfile::tempdir().unwrap();
        let c = read_curves(dir.path(), "m").unwrap();
        assert!(write_curves(dir.path(), &[c], "m").is_err());
        redraw_run(dir.path(), "m"); // a warning, not a panic
        assert!(!dir.path().join(CURVES_FILE).exists());
    }
}
