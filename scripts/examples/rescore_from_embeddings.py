#!/usr/bin/env python3
"""Re-score a `cargo xtask eval --weights W --save-embeddings --out DIR` folder in numpy.

Reads what --save-embeddings writes into DIR:
  image_embeddings.npy   N x D float32, L2-normalised rows (as scored)
  image_ids.txt          the N record ids, in row order
  prompt_embeddings.npy  P x D float32, L2-normalised rows, one per line of prompts.tsv
  prompts.tsv            class <TAB> polarity (positive / negative) <TAB> text, under a header

and computes CheXzero's zero-shot probabilities exactly as the tool does: per class and
polarity, the mean of the prompt rows, renormalised; a class with no negative row (a
"complement" class such as Normal under the present/absent prompts) gets a zero negative
embedding, i.e. is scored from its positive prompts alone; then
p = exp(img.pos) / (exp(img.pos) + exp(img.neg)) on raw cosines.

With DIR/scores.csv present it prints the largest difference from the tool's scores. Write
your own prompts' embeddings into the same layout to try other classes without the tool.

Usage: python3 scripts/examples/rescore_from_embeddings.py DIR [--out scores_numpy.csv]
Needs numpy only.
"""

import argparse
import csv
import os
import sys

import numpy as np


def normalise(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def read_prompts(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    if header != ["class", "polarity", "text"]:
        sys.exit(f"{path}: unexpected header {header}")
    return rows


def class_embeddings(prompts, prompt_emb):
    classes = []
    for cls, _, _ in prompts:
        if cls not in classes:
            classes.append(cls)
    pos, neg = {}, {}
    for side, out in (("positive", pos), ("negative", neg)):
        for cls in classes:
            idx = [i for i, (c, pol, _) in enumerate(prompts) if c == cls and pol == side]
            if idx:
                out[cls] = normalise(prompt_emb[idx].mean(axis=0))
    for cls in classes:
        if cls not in neg:
            neg[cls] = np.zeros_like(pos[cls])
    return classes, np.stack([pos[c] for c in classes]), np.stack([neg[c] for c in classes])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="an `xtask eval --save-embeddings` output folder")
    ap.add_argument("--out", help="write the re-computed scores here as CSV (id, classes...)")
    args = ap.parse_args()

    img = np.load(os.path.join(args.dir, "image_embeddings.npy")).astype(np.float64)
    with open(os.path.join(args.dir, "image_ids.txt"), encoding="utf-8") as f:
        ids = [line.rstrip("\n") for line in f]
    prompts = read_prompts(os.path.join(args.dir, "prompts.tsv"))
    prompt_emb = np.load(os.path.join(args.dir, "prompt_embeddings.npy")).astype(np.float64)
    if len(ids) != img.shape[0] or len(prompts) != prompt_emb.shape[0]:
        sys.exit("row counts of the embeddings and their id / prompt lists differ")

    classes, pos, neg = class_embeddings(prompts, prompt_emb)
    scores = 1.0 / (1.0 + np.exp(img @ neg.T - img @ pos.T))

    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id"] + classes)
            for i, row in zip(ids, scores):
                w.writerow([i] + [f"{v:.8g}" for v in row])
    tool = os.path.join(args.dir, "scores.csv")
    if os.path.exists(tool):
        with open(tool, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        if header[1:] != classes or [r[0] for r in body] != ids:
            sys.exit("scores.csv has other classes or ids than the saved embeddings")
        theirs = np.array([[float(v) if v else np.nan for v in r[1:]] for r in body])
        diff = np.nanmax(np.abs(theirs - scores))
        print(f"{len(ids)} images x {len(classes)} classes; max |numpy - scores.csv| = {diff:.2e}")
        if diff > 1e-5:
            sys.exit("the numpy scores differ from scores.csv")


if __name__ == "__main__":
    main()
