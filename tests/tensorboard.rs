//! TensorBoard scalars and training curves.
//!
//! - The committed fixture events files (`tests/fixtures/tensorboard/`) are what the writer
//!   makes from the committed `session1.jsonl` / `session2.jsonl` (a run, and its resume at
//!   step 4), byte for byte; TensorBoard's own reader saw them as `scalars_golden.json`
//!   (`scripts/goldens/cxr-train/read_tfevents.py`), which must equal the run's final
//!   `metrics.jsonl` (after the resume set its tail aside): no step twice, none lost.
//! - A tiny training run writes `curves.png` and an events file that an independent decoder
//!   below (its own CRC-32C, its own protobuf walk) reads back equal to `metrics.jsonl`; a
//!   resume adds a second events file that starts with a `SessionLog START`.
//!
//! `CXR_WRITE_FIXTURES=1 cargo test -p cxr-cml --test tensorboard fixture` rewrites the
//! fixture events files (then rerun the Python script).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_cml::train::metrics::{self, MetricsLine};
use cxr_cml::train::tensorboard::{events_files, EventWriter};
use cxr_cml::train::{checkpoint, prepare, train_one, train_resumable, Method};
use serde_json::Value;

use crate::common;

// ---------------------------------------------------------------------------------------
// An independent reader: TFRecord framing with masked CRC-32C, and the Event protobuf.

fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked(data: &[u8]) -> u32 {
    let c = crc32c_bitwise(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[derive(Debug, Default, PartialEq)]
struct Event {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    session_start: bool,
    scalars: Vec<(String, f32)>,
}

/// The records of a TFRecord file; panics on a bad CRC or a truncated record.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at < bytes.len() {
        let head = &bytes[at..at + 8];
        let len = u64::from_le_bytes(head.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(crc, masked(head), "length CRC of the record at byte {at}");
        let data = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(crc, masked(data), "data CRC of the record at byte {at}");
        out.push(data);
        at += 16 + len;
    }
    out
}

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// `(field, wire type, bytes)` of every field of a protobuf message.
fn fields(buf: &[u8]) -> Vec<(u64, u64, &[u8])> {
    let (mut out, mut at) = (Vec::new(), 0);
    while at < buf.len() {
        let key = varint(buf, &mut at);
        let (field, wire) = (key >> 3, key & 7);
        let start = at;
        let end = match wire {
            0 => {
                varint(buf, &mut at);
                at
            }
            1 => at + 8,
            2 => {
                let len = varint(buf, &mut at) as usize;
                let s = at;
                out.push((field, wire, &buf[s..s + len]));
                at = s + len;
                continue;
            }
            5 => at + 4,
            w => panic!("wire type {w}"),
        };
        out.push((field, wire, &buf[start..end]));
        at = end;
    }
    out
}

fn parse_event(buf: &[u8]) -> Event {
    let mut e = Event::default();
    for (field, _, b) in fields(buf) {
        match field {
            1 => e.wall_time = f64::from_le_bytes(b.try_into().unwrap()),
            2 => e.step = varint(b, &mut 0) as i64,
            3 => e.file_version = Some(String::from_utf8(b.to_vec()).unwrap()),
            5 => {
                for (f, _, value) in fields(b) {
                    assert_eq!(f, 1, "Summary.value");
                    let (mut tag, mut v) = (String::new(), None);
                    for (f, _, b) in fields(value) {
                        match f {
                            1 => tag = String::from_utf8(b.to_vec()).unwrap(),
                            2 => v = Some(f32::from_le_bytes(b.try_into().unwrap())),
                            f => panic!("Summary.Value field {f}"),
                        }
                    }
                    e.scalars.push((tag, v.expect("a simple_value")));
                }
            }
            7 => {
                e.session_start = fields(b)
                    .iter()
                    .any(|(f, _, s)| *f == 1 && varint(s, &mut 0) == 1)
            }
            f => panic!("Event field {f}"),
        }
    }
    e
}

fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    records(&bytes).into_iter().map(parse_event).collect()
}

// ---------------------------------------------------------------------------------------
// What TensorBoard should show for a metrics.jsonl line, read from the JSON itself.

/// `(kind, JSON key, tag)`: every logged number and its TensorBoard tag.
const TAGS: [(&str, &str, &str); 12] = [
    ("step", "loss", "train/loss"),
    ("step", "clip_loss", "train/clip_loss"),
    ("step", "metric_loss", "train/metric_loss"),
    ("step", "lr", "train/lr"),
    ("step", "grad_norm", "train/grad_norm"),
    ("step", "images_per_sec", "train/images_per_sec"),
    ("validation", "val_macro_auc", "val/macro_auc_every"),
    ("epoch", "epoch", "epoch/epoch"),
    ("epoch", "train_loss", "epoch/train_loss"),
    ("epoch", "val_loss", "val/loss"),
    ("epoch", "val_macro_auc", "val/macro_auc"),
    ("epoch", "lr", "epoch/lr"),
];

/// A line's TensorBoard step (the last optimisation step it covers) and scalars.
fn expected(line: &Value) -> (i64, Vec<(String, f32)>) {
    let kind = line["kind"].as_str().unwrap();
    let step = line["step"].as_i64().unwrap();
    let step = if kind == "step" { step } else { step - 1 };
    let scalars = TAGS
        .iter()
        .filter(|(k, _, _)| *k == kind)
        .filter_map(|(_, key, tag)| line[key].as_f64().map(|v| (tag.to_string(), v as f32)))
        .collect();
    (step, scalars)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The scalar events of `events` equal the lines, one event per line, in order.
fn assert_events_match(events: &[Event], lines: &[Value]) {
    assert_eq!(events.len(), lines.len(), "one event per metrics line");
    for (e, line) in events.iter().zip(lines) {
        let (step, scalars) = expected(line);
        assert_eq!((e.step, &e.scalars), (step, &scalars), "{line}");
    }
}

/// TensorBoard's view of a run folder's event files: per tag, `(step, value)` in file order,
/// a `SessionLog START` at step s dropping the older files' events at s or later.
fn tensorboard_view(files: &[Vec<Event>]) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut view: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for events in files {
        for e in events {
            if e.session_start {
                for points in view.values_mut() {
                    points.retain(|p| p.0 < e.step);
                }
            }
            for (tag, v) in &e.scalars {
                view.entry(tag.clone()).or_default().push((e.step, *v));
            }
        }
    }
    view.retain(|_, v| !v.is_empty());
    view
}

/// Per tag, `(step, value)` of the lines, in order.
fn lines_view(lines: &[Value]) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut view: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for line in lines {
        let (step, scalars) = expected(line);
        for (tag, v) in scalars {
            view.entry(tag).or_default().push((step, v));
        }
    }
    view
}

// ---------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tensorboard")
}

/// What the writer makes of a fixture session's lines at a fixed wall time.
fn encode_session(jsonl: &str, resumed_at: Option<usize>, wall_time: f64) -> Vec<u8> {
    let text = std::fs::read_to_string(fixtures().join(jsonl)).unwrap();
    let mut w = EventWriter::new(Vec::new(), jsonl.into(), resumed_at, Some(wall_time)).unwrap();
    for line in text.lines() {
        let line: MetricsLine = serde_json::from_str(line).unwrap();
        let (step, values) = metrics::tensorboard_scalars(&line);
        w.scalars(step, &values).unwrap();
    }
    w.into_inner()
}

/// The checkpoint session 2 resumed from: the end of epoch 0, after 4 steps.
const RESUMED_AT: usize = 4;
const SESSION_FILES: [(&str, &str, Option<usize>, f64); 2] = [
    (
        "session1.jsonl",
        "events.out.tfevents.1700000000.fixture",
        None,
        1_700_000_000.0,
    ),
    (
        "session2.jsonl",
        "events.out.tfevents.1700000100.fixture",
        Some(RESUMED_AT),
        1_700_000_100.0,
    ),
];

#[test]
fn fixture_events_are_what_the_writer_makes_and_tensorboard_read_them_as_the_final_metrics() {
    let dir = fixtures();
    let write = std::env::var_os("CXR_WRITE_FIXTURES").is_some();
    let mut files = Vec::new();
    for (jsonl, events, resumed_at, wall_time) in SESSION_FILES {
        let bytes = encode_session(jsonl, resumed_at, wall_time);
        let path = dir.join(events);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap();
        assert!(
            bytes == committed,
            "{} differs from what the writer makes of {jsonl}: if the change is intended, \
             rerun with CXR_WRITE_FIXTURES=1, then scripts/goldens/cxr-train/read_tfevents.py",
            path.display()
        );

        // The independent reader sees the version, the resume marker and one event per line.
        let decoded = read_events(&path);
        assert_eq!(decoded[0].file_version.as_deref(), Some("brain.Event:2"));
        let head = 1 + usize::from(resumed_at.is_some());
        if let Some(step) = resumed_at {
            assert!(decoded[1].session_start);
            assert_eq!(decoded[1].step, step as i64);
        }
        assert!(decoded.iter().all(|e| e.wall_time == wall_time));
        let lines = json_lines(&std::fs::read_to_string(dir.join(jsonl)).unwrap());
        assert_events_match(&decoded[head..], &lines);
        files.push(decoded);
    }

    // The run folder after the resume: session 1's metrics cut at the checkpoint, session 2's
    // appended. That is what TensorBoard must show (and what our model of it shows).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("session1.jsonl"), tmp.path().join("metrics.jsonl")).unwrap();
    metrics::truncate_after(tmp.path(), 1, RESUMED_AT).unwrap();
    let mut final_text = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    final_text.push_str(&std::fs::read_to_string(dir.join("session2.jsonl")).unwrap());
    let want = lines_view(&json_lines(&final_text));
    assert_eq!(tensorboard_view(&files), want);

    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scalars_golden.json")).unwrap())
            .unwrap();
    // TensorBoard's loader read every record of both files and saw the resume marker.
    let seen_files = golden["files"].as_array().unwrap();
    assert_eq!(seen_files.len(), 2);
    for ((_, name, resumed_at, _), (seen, ours)) in
        SESSION_FILES.iter().zip(seen_files.iter().zip(&files))
    {
        assert_eq!(seen["name"], *name);
        assert_eq!(seen["file_version"], "brain.Event:2");
        assert_eq!(seen["events"].as_u64().unwrap() as usize, ours.len());
        let starts: Vec<usize> = resumed_at.iter().copied().collect();
        assert_eq!(seen["session_starts"], serde_json::json!(starts), "{name}");
    }
    let seen: BTreeMap<String, Vec<(i64, f32)>> = golden["scalars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(tag, points)| {
            let points = points
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap() as f32))
                .collect();
            (tag.clone(), points)
        })
        .collect();
    assert_eq!(
        seen, want,
        "TensorBoard's EventAccumulator against metrics.jsonl"
    );
}

/// Width and height from a PNG's IHDR.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_run_writes_curves_and_events_and_a_resume_starts_a_new_events_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config(tmp.path(), 30);
    cfg.method = Method::Baseline;
    cfg.train_loop.epochs = 2;
    cfg.train_loop.batch_size = 8;
    cfg.train_loop.validate_every = Some(3);
    cfg.eval.bootstrap = 0;
    cfg.eval.figures = true;
    cfg.eval.tsne_max_points = 50;
    let data = prepare::prepare(&cfg).unwrap();
    let split = data.patient_split(&cfg.data, cfg.seed);
    let run = tmp.path().join("run");
    train_one(&cfg, &data, &split, &run).unwrap();

    assert_eq!(png_size(&run.join("curves.png")), (1400, 1000));
    let files = events_files(&run).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let lines = json_lines(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap());
    assert!(lines.iter().any(|l| l["kind"] == "validation"));
    assert_events_match(&events[1..], &lines);

    // Resume from the end of epoch 0: epoch 1 runs again, a second file records it.
    let from = checkpoint::checkpoints_dir(&run).join("epoch-0000");
    let state = checkpoint::read_state(&from).unwrap();
    std::fs::remove_file(run.join("curves.png")).unwrap();
    train_resumable(&cfg, &data, &split, &run, Some(&from)).unwrap();
    assert!(run.join("curves.png").is_file(), "redrawn after the resume");
    let files = events_files(&run).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let second = read_events(&files[1]);
    assert!(second[1].session_start);
    assert_eq!(second[1].step, state.step as i64);
    let both = [read_events(&files[0]), second];
    let lines = json_lines(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap());
    assert_eq!(tensorboard_view(&both), lines_view(&lines));
}
