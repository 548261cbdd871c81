#!/usr/bin/env python3
"""Golden token ids for cxr-text's ClipTokenizer.

References (versions are recorded in the output file):
  - Hugging Face transformers CLIPTokenizer (5.24.0; tokenizers 0.23.3 backend), built OFFLINE
    from the vocab.json / merges.txt this script derives from data/bpe_simple_vocab_16e6.txt.gz
    with OpenAI's own procedure (no hub access);
  - open_clip_torch 3.3.0 `open_clip.tokenize` (OpenAI's pure-Python SimpleTokenizer, with
    ftfy 6.3.1 + html.unescape cleanup and pad id 0), whose bundled vocabulary must be
    byte-identical to data/bpe_simple_vocab_16e6.txt.gz (checked by SHA-256 below).

Writes, under crates/cxr-text/tests/fixtures/:
  tokenizer_corpus.json    the corpus: a JSON list of {"category", "text"} (>= 1,000 strings)
  tokenizer_goldens.json   per corpus entry: HF ids, open_clip ids (null where equal to HF's),
                           open_clip's cleaned text where ftfy/html.unescape changes it; plus
                           padded batches of both
  hf_clip_tokenizer_sampled.json  the tokenizer.json that transformers writes for this tokenizer,
                           with the vocabulary and merges thinned to a sample (ids < 600 and every
                           37th entry, keyed by id / merge index) to keep the fixture small

Run from the repository root:
  python3 scripts/goldens/cxr-text/make_tokenizer_goldens.py
"""

import gzip
import hashlib
import html
import json
import random
import sys
import tempfile
from pathlib import Path

import ftfy
import open_clip
import tokenizers
import transformers
from open_clip import tokenizer as oc_tok
from transformers import CLIPTokenizer

ROOT = Path(__file__).resolve().parents[3]
VOCAB_GZ = ROOT / "data" / "bpe_simple_vocab_16e6.txt.gz"
OUT = ROOT / "crates" / "cxr-text" / "tests" / "fixtures"
CONTEXT = 77
SEED = 20261128

# ---------------------------------------------------------------------------------------------
# Vocabulary: OpenAI's procedure (simple_tokenizer.py), written as HF's vocab.json/merges.txt.


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_hf_files(folder: Path):
    lines = gzip.open(VOCAB_GZ).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


# ---------------------------------------------------------------------------------------------
# Corpus.

CXR_LT_40 = [
    "Adenopathy", "Atelectasis", "Azygos Lobe", "Calcification of the Aorta", "Cardiomegaly",
    "Clavicle Fracture", "Consolidation", "Edema", "Emphysema", "Enlarged Cardiomediastinum",
    "Fibrosis", "Fissure", "Fracture", "Granuloma", "Hernia", "Hydropneumothorax", "Infarction",
    "Infiltration", "Kyphosis", "Lobar Atelectasis", "Lung Lesion", "Lung Opacity", "Mass",
    "Nodule", "Normal", "Pleural Effusion", "Pleural Other", "Pleural Thickening",
    "Pneumomediastinum", "Pneumonia", "Pneumoperitoneum", "Pneumothorax", "Pulmonary Embolism",
    "Pulmonary Hypertension", "Rib Fracture", "Round(ed) Atelectasis", "Subcutaneous Emphysema",
    "Support Devices", "Tortuous Aorta", "Tuberculosis",
]
UNSEEN = ["Bulla", "Cardiomyopathy", "Hilum", "Osteopenia", "Scoliosis"]
CHEXPERT_EXTRA = ["No Finding", "Pleural_Thickening", "Enlarged Cardiomediastinum"]
ALIASES = ["effusion", "pulmonary effusion", "enlarged heart", "collapsed lung",
           "pulmonary edema", "lung nodule", "air under the diaphragm", "free air",
           "rib fractures", "hilar adenopathy", "pleural fluid", "vascular congestion"]

REPORT_SENTENCES = [
    "No acute cardiopulmonary process.",
    "Heart size is normal. Lungs are clear.",
    "Moderate right pleural effusion with adjacent atelectasis.",
    "Interval placement of a right internal jugular central venous catheter, tip in the SVC.",
    "Endotracheal tube terminates 4.5 cm above the carina.",
    "NG tube courses below the diaphragm, tip in the stomach.",
    "Small left apical pneumothorax, approximately 1 cm.",
    "Bibasilar opacities likely reflect atelectasis; infection cannot be excluded.",
    "Mild pulmonary vascular congestion without frank edema.",
    "Stable cardiomegaly. Median sternotomy wires are intact.",
    "s/p CABG. Left-sided pacemaker with leads in the RA and RV.",
    "Compared to ___, there is no significant change.",
    "Dr. ___ was notified by telephone at 10:45 AM on ___.",
    "Findings were discussed with Dr. ___ at 3:15 p.m.",
    "PA and lateral views of the chest were obtained.",
    "AP portable upright view of the chest.",
    "The lungs are hyperinflated with flattening of the diaphragms, c/w COPD.",
    "Healed fractures of the left 5th-7th ribs.",
    "Acute displaced fracture of the right clavicle.",
    "Calcified granuloma in the right upper lobe (RUL).",
    "Tortuous and calcified thoracic aorta.",
    "Large hiatal hernia.",
    "Pneumoperitoneum: free air beneath the right hemidiaphragm!",
    "Subcutaneous emphysema along the left chest wall.",
    "Pneumomediastinum is again seen.",
    "Diffuse interstitial opacities, ? fibrosis vs. edema.",
    "Mass-like opacity (3.2 x 2.8 cm) in the left hilum.",
    "Multiple pulmonary nodules, the largest measuring 12 mm.",
    "Thoracic kyphosis; degenerative changes of the spine.",
    "Right lower lobe consolidation concerning for pneumonia.",
    "ET tube 5 cm above carina; OG tube in stomach; R PICC tip at cavoatrial junction.",
    "There is no pleural effusion or pneumothorax.",
    "Cardiomediastinal silhouette is within normal limits.",
    "Hilar contours are unremarkable.",
    "Blunting of the left costophrenic angle may represent a small effusion.",
    "Lines/tubes: unchanged.",
    "IMPRESSION: 1. No acute process. 2. Stable appearance of the chest.",
    "FINDINGS: Lungs clear bilaterally; heart size upper normal.",
    "Low lung volumes limit evaluation.",
    "Patient is rotated to the left.",
    "Elevation of the right hemidiaphragm.",
    "Azygos fissure noted, a normal variant.",
    "Pleural thickening at the apices, likely chronic.",
    "Rounded atelectasis in the left lower lobe.",
    "Hydropneumothorax with air-fluid level on the right.",
    "Cavitary lesion in the RUL, r/o TB.",
    "Pulmonary arterial enlargement suggests pulmonary hypertension.",
    "Wedge-shaped opacity, possible infarction.",
    "Lobar collapse of the LLL.",
    "Tracheostomy tube in standard position.",
    "Left chest tube in place; no residual pneumothorax.",
    "Interval improvement in the right basilar opacity.",
    "Worsening bilateral airspace disease.",
    "Moderate-to-severe cardiomegaly, increased since 01/02/2019.",
    "Sternal wires #1-#6 are intact.",
    "Heart size ~ 15 cm; CTR > 0.5.",
    "O2 sat 88%; T 38.5 C; HR 110 bpm.",
    "Pt's prior film from 2015 is unavailable.",
    "The patient's ET tube was pulled back 2cm.",
    "There's new left basilar opacity.",
    "Can't exclude small effusion.",
    "It's unchanged; we'll reassess tomorrow.",
    "Left > right pleural effusions.",
    "Mild (grade 1/4) pulmonary edema.",
    "Aortic knob calcification [chronic].",
    "{Clinical history}: cough, fever, SOB.",
    "Q: pneumonia? A: likely.",
    "Spine: mild S-shaped scoliosis; osteopenia.",
    "Bulla at the right apex.",
    "Cardiomyopathy with biventricular enlargement.",
]

GENERAL = [
    "a photo of a cat", "a photo of a dog.", "A diagram", "a photo of a chest x-ray",
    "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "It's a beautiful day", "I'm here; you're there; we've been; they'll go; he'd say",
    "don't won't can't shouldn't isn't", "DON'T SHOUT, IT'S LOUD", "O'Brien's X-ray",
    "rock 'n' roll", "'quoted'", "''", "'s", "'S", "'t've", "y'all'd've",
    "don’t", "it’s", "‘single curly’", "“double curly”", "\"straight double\"",
    "e-mail", "state-of-the-art", "well...", "what?!", "!!!", "???", "---", "--", "...",
    "(parenthesised)", "[bracketed]", "{braced}", "<angled>", "a/b/c", "a\\b", "a|b", "#hashtag",
    "@mention", "$100", "100%", "50/50", "1:2", "3.14159", "1,000,000", "1e-5", "-42", "+7",
    "0", "00", "0123456789", "2026-11-28", "12:34:56", "v2.0.1", "x86_64", "snake_case_name",
    "CamelCaseWord", "HTTP", "https://example.com/path?q=1&r=2", "user@example.com",
    "C++", "C#", "F#", "R&D", "AT&T", "&", "&&", "Tom & Jerry",
    "&amp;", "fish &amp; chips", "&lt;tag&gt;", "&quot;hi&quot;", "&#39;", "&amp;amp;",
    "café", "naïve", "Größe", "ﬁnancial ﬂow", "ＡＢＣ１２３", "cafe\u0301", "Å", "A\u030a",
    "İstanbul", "ΣΊΣΥΦΟΣ", "Οδυσσεύς", "Москва", "Привет, мир!", "日本語のテキスト", "中文测试",
    "한국어", "مرحبا بالعالم", "שלום", "हिन्दी", "ไทย", "😀", "👍🏽", "🇺🇸", "I ❤ CLIP",
    "emoji 🫁 lungs", "∑ x_i ≤ 1", "α β γ", "µm", "°C", "±2", "×", "→", "…", "—", "–",
    "\u00a0nbsp\u00a0", "em\u2003space", "zero\u200bwidth", "soft\u00adhyphen", "bom\ufeffhere",
    "tab\tseparated\ttext", "new\nline", "crlf\r\nline", "  leading and trailing  ",
    "multiple     spaces", "\t\n\r ", " ", "", "a", "A", "I", "x",
    "ctrl\x00char", "bell\x07", "esc\x1b[31mred", "sep\x1cfs", "unit\x1fsep", "nel\x85line",
    "cafÃ©", "donâ€™t", "Ã©tÃ©",
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|ENDOFTEXT|>",
    "<start_of_text>", "<end_of_text>",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "supercalifragilisticexpialidocious", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
]


def corpus():
    rng = random.Random(SEED)
    entries = []

    def add(category, text):
        entries.append({"category": category, "text": text})

    for name in CXR_LT_40 + UNSEEN + CHEXPERT_EXTRA:
        add("class_name", name)
        add("class_name", name.lower())
        add("class_name", name.upper())
    for alias in ALIASES:
        add("alias", alias)

    # Zero-shot prompts: CheXzero's and present/absent, plus a few other templates.
    for name in CXR_LT_40 + UNSEEN:
        for t in ["{}", "no {}", "{} is present", "{} is absent"]:
            add("prompt", t.format(name))
    for name in rng.sample(CXR_LT_40, 10):
        for t in ["findings suggesting {}", "no evidence of {}", "a chest x-ray showing {}"]:
            add("prompt", t.format(name))

    # Meta-label texts: the paper's and the released code's forms, fixed and shuffled order.
    add("meta_label", "adenopathy is present, pulmonary effusion is present")
    add("meta_label", "no finding is present")
    add("meta_label", "No Finding is present.")
    for _ in range(130):
        k = rng.choice([1, 1, 2, 2, 3, 4, 6, 10])
        names = sorted(rng.sample(range(len(CXR_LT_40)), k))
        pos = [CXR_LT_40[i] for i in names]
        if rng.random() < 0.5:
            rng.shuffle(pos)
        add("meta_label", ", ".join(f"{n.lower()} is present" for n in pos))
        add("meta_label", " ".join(f"{n} is present." for n in pos))

    # Report-like text: the sentences, random combinations (some long enough to truncate).
    for s in REPORT_SENTENCES:
        add("report", s)
        add("report", s.upper())
    for _ in range(220):
        k = rng.choice([2, 3, 4, 8, 12])
        add("report", " ".join(rng.sample(REPORT_SENTENCES, k)))

    for g in GENERAL:
        add("general", g)

    # Truncation edge cases: lengths around the 75 content tokens.
    for n in [74, 75, 76, 77, 78, 150]:
        add("truncation", " ".join(["effusion"] * n))
        add("truncation", "".join(str(i % 10) for i in range(n)))
        add("truncation", "!" * n + " " + "? " * n)
    add("truncation", "x " * 500)
    add("truncation", "pneumothorax " * 40 + "END")

    # Random character soup drawn from mixed alphabets, punctuation and whitespace.
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                " .,;:!?'\"-()/&%#+*=_[]{}<>@$^~`|\\ \t\néüßøçñ–—’“”…°±µ×αβγΔΣπЖжЯ日本中文한😀")
    for _ in range(60):
        add("random", "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))))

    # The no-finding classes' report wording among the present/absent prompts
    # (cxr_text::NORMAL_REPORT_TEXT); last, so the seeded entries above keep their order.
    add("prompt", "no acute cardiopulmonary process")
    return entries


# ---------------------------------------------------------------------------------------------


def open_clip_ids(tok, text):
    """open_clip.tokenize's ids for one text, without the zero padding."""
    ids = [tok.sot_token_id] + tok.encode(text) + [tok.eot_token_id]
    if len(ids) > CONTEXT:
        ids = ids[:CONTEXT]
        ids[-1] = tok.eot_token_id
    return ids


def main():
    oc_vocab = Path(oc_tok.default_bpe())
    sha_ours = hashlib.sha256(VOCAB_GZ.read_bytes()).hexdigest()
    sha_oc = hashlib.sha256(oc_vocab.read_bytes()).hexdigest()
    assert sha_ours == sha_oc, f"vocab differs from open_clip's: {sha_ours} vs {sha_oc}"

    entries = corpus()
    texts = [e["text"] for e in entries]
    assert len(texts) >= 1000, len(texts)

    with tempfile.TemporaryDirectory() as tmp:
        write_hf_files(Path(tmp))
        hf = CLIPTokenizer.from_pretrained(tmp, local_files_only=True)
        hf.save_pretrained(Path(tmp) / "saved")
        hf_json = (Path(tmp) / "saved" / "tokenizer.json").read_bytes()
    assert hf.pad_token_id == 49407 and hf.bos_token_id == 49406 and hf.eos_token_id == 49407

    oc = oc_tok._tokenizer
    hf_ids = hf(texts, truncation=True, max_length=CONTEXT)["input_ids"]
    rows = []
    for e, h in zip(entries, hf_ids):
        text = e["text"]
        o = open_clip_ids(oc, text)
        # Cross-check the helper against open_clip.tokenize itself (pads with 0).
        full = open_clip.tokenize([text])[0].tolist()
        assert full[:len(o)] == o and all(v == 0 for v in full[len(o):]), text
        # open_clip: null where it equals the HF ids (keeps the file small).
        row = {"hf": h, "open_clip": None if o == h else o}
        cleaned = oc_tok.basic_clean(text)
        if cleaned != text.strip():
            row["open_clip_cleaned"] = cleaned
        rows.append(row)

    # Padded batches exactly as each library returns them.
    batch_idx = list(range(0, len(texts), max(1, len(texts) // 24)))[:24]
    batch_texts = [texts[i] for i in batch_idx]
    hf_batch = hf(batch_texts, truncation=True, max_length=CONTEXT, padding="max_length")
    oc_batch = open_clip.tokenize(batch_texts).tolist()

    n_diff = sum(r["open_clip"] is not None for r in rows)
    goldens = {
        "generated_by": "scripts/goldens/cxr-text/make_tokenizer_goldens.py",
        "references": {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "open_clip_torch": open_clip.__version__,
            "ftfy": ftfy.__version__,
            "python": sys.version.split()[0],
        },
        "vocab_sha256": sha_ours,
        "context_length": CONTEXT,
        "n": len(rows),
        "n_hf_vs_open_clip_differ": n_diff,
        "rows": rows,
        "batch": {
            "indices": batch_idx,
            "hf_input_ids": hf_batch["input_ids"],
            "hf_attention_mask": hf_batch["attention_mask"],
            "open_clip": oc_batch,
        },
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tokenizer_corpus.json").write_text(
        json.dumps(entries, ensure_ascii=True, indent=0) + "\n")
    (OUT / "tokenizer_goldens.json").write_text(
        json.dumps(goldens, ensure_ascii=True, separators=(",", ":")) + "\n")
    full = json.loads(hf_json)
    vocab, merges = full["model"]["vocab"], full["model"]["merges"]
    full["model"]["vocab"] = {t: i for t, i in vocab.items() if i < 600 or i % 37 == 0}
    full["model"]["merges"] = {str(i): m for i, m in enumerate(merges) if i % 37 == 0}
    full["model"]["vocab_len"] = len(vocab)
    full["model"]["merges_len"] = len(merges)
    (OUT / "hf_clip_tokenizer_sampled.json").write_text(
        json.dumps(full, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"{len(rows)} strings; HF and open_clip differ on {n_diff}")
    hf_clean = {}
    for e, r in zip(entries, rows):
        if r["open_clip"] is not None:
            c = r.get("open_clip_cleaned")
            if c is not None and hf(c, truncation=True, max_length=CONTEXT)["input_ids"] == r["open_clip"]:
                hf_clean["explained"] = hf_clean.get("explained", 0) + 1
                continue
            print(f"  unexplained: {e['category']:<10} {e['text']!r:.60} cleaned={c!r:.40}")
    print(f"  {hf_clean.get('explained', 0)} explained by ftfy/html cleanup")


if __name__ == "__main__":
    main()
