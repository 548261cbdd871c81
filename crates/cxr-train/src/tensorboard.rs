//! TensorBoard scalars: an `events.out.tfevents.<seconds>.<host>` file (TFRecord framing with
//! masked CRC32C, hand-encoded `Event` protobufs) written beside `metrics.jsonl`.
//!
//! The format is small enough to write directly: each record is its length (u64 LE), the
//! masked CRC32C of those 8 bytes, the payload and the payload's masked CRC32C. The payload is
//! an `Event { wall_time = 1, step = 2, file_version = 3, summary = 5, session_log = 7 }` whose
//! summary holds `Value { tag = 1, simple_value = 2 }`s. (The crates that do this,
//! `syntaxdot-summary` and `tensorboard-rs`, bring prost or protobuf 2 and an old `image`,
//! and cannot fix the wall time that a byte-exact golden needs.)
//!
//! A file starts with the `brain.Event:2` version event. A resumed run starts a new file whose
//! second event is a `SessionLog START` at the step it resumes from: TensorBoard then drops
//! what older files hold at that step or later (the steps the crashed run did after its last
//! checkpoint, which `metrics.jsonl` sets aside too), so no step is shown twice. (TensorBoard's
//! Python `EventAccumulator` purges on the START event, checked against `tensorboard` 2.20 by
//! `tests/tensorboard.rs`; its Rust data server preempts each series when a step at or below
//! its last one arrives, which the resumed run's records are: `tensorboard --load_fast=true`
//! 2.20 on the fixture files serves `train/loss` at steps 0-9 once each, 4-9 from the resume.) The step of each record is
//! chosen (`tensorboard_scalars` in `metrics.rs`, the module above this one) so that this cut
//! falls exactly where a resume cuts `metrics.jsonl`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::Result;

/// The prefix of every events file name (TensorBoard looks for `tfevents` in the name).
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// CRC-32C (Castagnoli), bitwise table built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// TFRecord's masked CRC: rotated right by 15 bits plus a constant.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the payload, its masked CRC.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (`field` number, wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The common head of an `Event`: wall time (field 1, double) and step (field 2, int64),
/// left out when zero as proto3 does.
fn event_head(wall_time: f64, step: i64) -> Vec<u8> {
    let mut out = Vec::new();
    if wall_time != 0.0 {
        out.push(1 << 3 | 1);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        out.push(2 << 3);
        varint(&mut out, step as u64);
    }
    out
}

/// The first event of every file: `file_version = "brain.Event:2"`.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut e = event_head(wall_time, 0);
    bytes_field(&mut e, 3, b"brain.Event:2");
    e
}

/// `session_log { status: START }` at `step`: TensorBoard forgets the older files' events at
/// `step` or later.
pub fn session_start_event(wall_time: f64, step: i64) -> Vec<u8> {
    let mut e = event_head(wall_time, step);
    // Event.session_log = 7 { status = 1: START = 1 }
    bytes_field(&mut e, 7, &[1 << 3, 1]);
    e
}

/// A summary of scalars (`simple_value`) at `step`.
pub fn scalars_event(wall_time: f64, step: i64, values: &[(&str, f32)]) -> Vec<u8> {
    let mut summary = Vec::new();
    for (tag, v) in values {
        let mut value = Vec::new();
        bytes_field(&mut value, 1, tag.as_bytes());
        // simple_value is in a oneof: written even when 0.
        value.push(2 << 3 | 5);
        value.extend_from_slice(&v.to_le_bytes());
        bytes_field(&mut summary, 1, &value);
    }
    let mut e = event_head(wall_time, step);
    bytes_field(&mut e, 5, &summary);
    e
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes events to `W` (a file in a run, a buffer in tests). Every event gets the current
/// time, or `fixed_wall_time` when set (for byte-exact fixtures).
pub struct EventWriter<W: Write> {
    out: W,
    path: PathBuf,
    fixed_wall_time: Option<f64>,
}

impl EventWriter<BufWriter<File>> {
    /// A new events file in `dir` (never an existing one: a name taken in the same second
    /// gets a `.N` suffix, which sorts after it). `resumed_at`: the step a resumed run goes on
    /// from (a `SessionLog START` there).
    pub fn create(dir: &Path, resumed_at: Option<usize>) -> Result<Self> {
        let secs = now() as u64;
        let base = format!("{EVENTS_PREFIX}{secs}.{}", host_name());
        let mut n = 0usize;
        let (file, path) = loop {
            let name = match n {
                0 => base.clone(),
                n => format!("{base}.{n}"),
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e).at(&path),
            }
        };
        Self::new(BufWriter::new(file), path, resumed_at, None)
    }
}

impl<W: Write> EventWriter<W> {
    /// Start an events stream on `out` (`path` names it in errors): the version event and,
    /// for a resumed run, the `SessionLog START` at `resumed_at`.
    pub fn new(
        out: W,
        path: PathBuf,
        resumed_at: Option<usize>,
        fixed_wall_time: Option<f64>,
    ) -> Result<Self> {
        let mut w = Self {
            out,
            path,
            fixed_wall_time,
        };
        let t = w.wall_time();
        w.write_event(&file_version_event(t))?;
        if let Some(step) = resumed_at {
            w.write_event(&session_start_event(t, step as i64))?;
        }
        Ok(w)
    }

    fn wall_time(&self) -> f64 {
        self.fixed_wall_time.unwrap_or_else(now)
    }

    fn write_event(&mut self, event: &[u8]) -> Result<()> {
        self.out.write_all(&record(event)).at(&self.path)
    }

    /// The scalars `values` at `step` (one event; nothing when `values` is empty).
    pub fn scalars(&mut self, step: usize, values: &[(&str, f32)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let event = scalars_event(self.wall_time(), step as i64, values);
        self.write_event(&event)
    }

    /// Push buffered events to the file (TensorBoard sees them from then on).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().at(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying writer (the bytes, for a `Vec<u8>`).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The events files in `dir`, oldest first (by name, as TensorBoard reads them).
pub fn events_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).at(dir),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(EVENTS_PREFIX)
        {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// This machine's name for the file name (`HOSTNAME`, `/etc/hostname`, else `localhost`),
/// reduced to characters safe in a file name.
fn host_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // The CRC-32C check value (RFC 3720 / iSCSI) and an all-zero block from RFC 3720 B.4.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn a_record_frames_its_payload() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(&r[15..], &masked_crc32c(b"abc").to_le_bytes());
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let enc = |v| {
            let mut o = Vec::new();
            varint(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }

    #[test]
    fn scalars_event_encodes_the_fields() {
        let e = scalars_event(0.0, 3, &[("a", 1.0)]);
        // step 3; summary { value { tag "a", simple_value 1.0 } }
        let one = 1.0f32.to_le_bytes();
        let expected = [
            0x10, 3, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15, one[0], one[1], one[2], one[3],
        ];
        assert_eq!(e, expected);
    }

    #[test]
    fn session_start_is_field_7_with_status_start() {
        // step 4; session_log (field 7) { status: START (1) }
        assert_eq!(session_start_event(0.0, 4), [0x10, 4, 0x3a, 2, 0x08, 1]);
    }

    #[test]
    fn create_never_reuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = EventWriter::create(dir.path(), None).unwrap();
        let b = EventWriter::create(dir.path(), Some(5)).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(events_files(dir.path()).unwrap().len(), 2);
    }
}
