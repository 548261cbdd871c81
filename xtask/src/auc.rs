//! `cargo xtask auc --scores S.csv --labels L.csv [--bootstrap N] [--seed S] [--json]`:
//! per-class ROC AUC (scikit-learn's definition) with bootstrap CIs for any pair of CSVs with
//! a header of class names and one row per image, in the same row order (a first column `id`
//! is skipped).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cxr_eval::{
    evaluate, parse_csv_header, parse_matrix_csv_columns, render_class_table, select_columns,
    BootstrapConfig, ClassGroup, EvalOptions,
};
use cxr_train::run_eval::ID_COLUMN;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scores CSV: header of class names, one row per image.
    #[arg(long)]
    scores: PathBuf,
    /// Labels CSV: the same class names (any order, extra columns ignored); 1, 0, or empty /
    /// nan for unknown (left out of that class).
    #[arg(long)]
    labels: PathBuf,
    /// Bootstrap resamples for the percentile CI; 0 turns CIs off.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Confidence level of the interval.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Comma-separated classes counted as rare (the rest are base) for the macro averages.
    #[arg(long, value_delimiter = ',')]
    rare: Vec<String>,
    /// Comma-separated non-class columns of the scores file (ids, paths) to ignore; a first
    /// column named `id` (as `cargo xtask eval` writes) is ignored without it. Columns of the
    /// labels file that are not classes are ignored anyway.
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Print JSON (per class auc, ci_low, ci_high, n_pos, n_neg; macro_all/base/rare and
    /// `macro`) instead of a markdown table.
    #[arg(long)]
    json: bool,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The class columns of a scores CSV: every column but a first one named `id` (as `cargo xtask
/// eval` writes) and those in `exclude`.
fn class_columns(scores_text: &str, exclude: &[String]) -> anyhow::Result<Vec<String>> {
    let all = parse_csv_header(scores_text)?;
    let id_first = all.first().is_some_and(|n| n == ID_COLUMN);
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|&(i, ref n)| (i > 0 || !id_first) && !exclude.contains(n))
        .map(|(_, n)| n)
        .collect())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let scores_text = read(&args.scores)?;
    let header = class_columns(&scores_text, &args.exclude)
        .with_context(|| format!("reading the header of {}", args.scores.display()))?;
    let (names, scores) =
        parse_matrix_csv_columns(&scores_text, Some(&header)).with_context(|| {
            format!(
                "parsing {} (use --exclude for id columns)",
                args.scores.display()
            )
        })?;
    let (label_names, labels) = parse_matrix_csv_columns(&read(&args.labels)?, Some(&names))
        .with_context(|| format!("parsing {}", args.labels.display()))?;
    let labels = select_columns(&label_names, &labels, &names)
        .context("matching label columns to score columns")?;
    if labels.nrows() != scores.nrows() {
        bail!(
            "{} has {} rows but {} has {}: both files need one row per image in the same order",
            args.scores.display(),
            scores.nrows(),
            args.labels.display(),
            labels.nrows()
        );
    }
    if let Some(unknown) = args.rare.iter().find(|r| !names.contains(r)) {
        bail!(
            "--rare names {unknown:?}, which is not a column of {}",
            args.scores.display()
        );
    }
    let groups: Vec<ClassGroup> = names
        .iter()
        .map(|n| {
            if args.rare.contains(n) {
                ClassGroup::Rare
            } else {
                ClassGroup::Base
            }
        })
        .collect();
    let opts = EvalOptions {
        bootstrap: (args.bootstrap > 0).then_some(BootstrapConfig {
            resamples: args.bootstrap,
            seed: args.seed,
            level: args.level,
        }),
    };
    let results = evaluate(scores.view(), labels.view(), &names, &groups, &opts)?;
    if args.json {
        let mut v = serde_json::to_value(&results)?;
        v["macro"] = serde_json::json!(results.macro_all);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_class_table(&results));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_id_column_is_skipped_and_files_without_one_still_read() {
        let with_id = "id,Edema,\"Support Devices, other\"\n\"a,1\",0.5,0.25\nb2,1,0\n";
        let cols = class_columns(with_id, &[]).unwrap();
        assert_eq!(cols, ["Edema", "Support Devices, other"]);
        let (_, m) = parse_matrix_csv_columns(with_id, Some(&cols)).unwrap();
        assert_eq!(m.dim(), (2, 2));
        assert_eq!(
            class_columns("Edema,Mass\n1,0\n", &[]).unwrap(),
            ["Edema", "Mass"]
        );
        // `id` elsewhere is a class name; --exclude still drops named columns.
        assert_eq!(
            class_columns("Edema,id,path\n", &["path".into()]).unwrap(),
            ["Edema", "id"]
        );
    }
}
