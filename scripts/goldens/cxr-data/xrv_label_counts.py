"""Golden label counts for the real CheXpert and NIH ChestX-ray14 label files.

Reference: pandas (version printed into the JSON) reading the files shipped in the
torchxrayvision 1.5.7 wheel (PyPI): torchxrayvision/data/chexpert_train.csv.gz and
torchxrayvision/data/Data_Entry_2017_v2020.csv.gz. The files are copied verbatim to
crates/cxr-data/tests/fixtures/xrv/ and the counts written to
crates/cxr-data/tests/fixtures/xrv_counts.json.

Usage: python xrv_label_counts.py [path/to/torchxrayvision-1.5.7-py3-none-any.whl]
(without an argument the wheel is fetched with `pip download torchxrayvision==1.5.7 --no-deps`).
"""
import json, os, re, shutil, subprocess, sys, tempfile, zipfile

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "..", "crates", "cxr-data", "tests", "fixtures")
FILES = ["chexpert_train.csv.gz", "Data_Entry_2017_v2020.csv.gz"]


def wheel_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    d = tempfile.mkdtemp()
    subprocess.check_call([sys.executable, "-m", "pip", "download", "torchxrayvision==1.5.7", "--no-deps", "-d", d])
    return os.path.join(d, [f for f in os.listdir(d) if f.endswith(".whl")][0])


def main():
    out = os.path.join(FIX, "xrv")
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(wheel_path()) as z:
        for f in FILES:
            with z.open("torchxrayvision/data/" + f) as src, open(os.path.join(out, f), "wb") as dst:
                shutil.copyfileobj(src, dst)

    golden = {"pandas": pd.__version__, "source": "torchxrayvision 1.5.7 wheel"}

    # CheXpert: labels 1 / 0 / -1 / blank; patient and study from the path; xrv-style view.
    df = pd.read_csv(os.path.join(out, FILES[0]))
    meta = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"]
    classes = [c for c in df.columns if c not in meta]
    pat = df.Path.str.extract(r"patient(\d+)")[0].astype(int)
    study = df.Path.str.extract(r"/study(\d+)")[0].astype(int)
    view = df["AP/PA"].where(df["Frontal/Lateral"] == "Frontal", "LATERAL").fillna("")
    golden["chexpert"] = {
        "rows": int(len(df)),
        "patients": int(pat.nunique()),
        "studies": int((pat * 1000 + study).nunique()),
        "views": {str(k).upper(): int(v) for k, v in view.value_counts().items()},
        "classes": [
            {
                "name": c,
                "positive": int((df[c] == 1).sum()),
                "negative": int((df[c] == 0).sum()),
                "uncertain": int((df[c] == -1).sum()),
                "missing": int(df[c].isna().sum()),
            }
            for c in classes
        ],
    }

    # NIH: pipe-separated findings, every other class negative.
    df = pd.read_csv(os.path.join(out, FILES[1]))
    counts = df["Finding Labels"].str.split("|").explode().value_counts()
    golden["nih"] = {
        "rows": int(len(df)),
        "patients": int(df["Patient ID"].nunique()),
        "studies": int((df["Patient ID"] * 1000 + df["Follow-up #"]).nunique()),
        "views": {str(k): int(v) for k, v in df["View Position"].value_counts().items()},
        "classes": [
            {"name": c, "positive": int(n), "negative": int(len(df) - n), "uncertain": 0, "missing": 0}
            for c, n in sorted(counts.items())
        ],
    }
    with open(os.path.join(FIX, "xrv_counts.json"), "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
