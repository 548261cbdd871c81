#!/usr/bin/env bash
# 5-fold cross-validation as a Slurm array job: one fold per task, then aggregate.
#
#   sbatch scripts/slurm/cv-array.sh                      # folds 0-4
#   cargo xtask cv --aggregate runs/cv-paper              # afterwards (or as a dependent job:
#   sbatch --dependency=afterok:<jobid> --wrap "cargo xtask cv --aggregate runs/cv-paper")
#
# Every task writes into the same --out folder; finished folds are skipped on a rerun and an
# interrupted fold resumes from its newest checkpoint. Edit the paths below for your site.
#SBATCH --job-name=cxr-cml-cv
#SBATCH --array=0-4
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --output=runs/slurm-%A_%a.out
set -euo pipefail

DATA_ROOT=${DATA_ROOT:-/data/mimic-cxr-jpg/2.0.0}
LABELS=${LABELS:-/data/cxr-lt-2024/train_labeled.csv}
REPORTS=${REPORTS:-/data/mimic-cxr/2.0.0}
# The paper's recipe starts every method from a CheXzero checkpoint (README: "The paper's
# Table 2 on real data"); the rows are then CheXzero as released, + meta labels and CXR-CML.
# Other weights: also pass --weights-name (e.g. "OpenAI CLIP") so the rows say what they are.
WEIGHTS=${WEIGHTS:?set WEIGHTS to a CheXzero .pt checkpoint, e.g. WEIGHTS=/models/chexzero/best_64_5e-05_original_22000_0.864.pt}
OUT=${OUT:-runs/cv-paper}

export HF_HUB_OFFLINE=1   # compute nodes read the hub cache only
cargo xtask cv --preset paper --folds 5 --fold "${SLURM_ARRAY_TASK_ID}" \
    --data-root "$DATA_ROOT" --labels "$LABELS" --reports-root "$REPORTS" \
    --weights "$WEIGHTS" --out "$OUT" --no-progress
