//! Weights by hub id, online (`cxr_clip::hub`, feature `hub-download`, what `cargo xtask eval
//! --weights owner/name` uses): downloaded through hf-hub's own client from a small local HTTP
//! server that serves the hub's file layout (`/{repo}/resolve/{revision}/{file}` with ETag,
//! X-Repo-Commit, Content-Range and byte ranges), into the standard cache layout under
//! `HF_HOME`; then resolved again with `HF_HUB_OFFLINE=1` from the cache alone, with no request.
//!
//! One test function: it sets process-wide environment variables (`HF_ENDPOINT`, `HF_HOME`,
//! `HF_HUB_OFFLINE`), so nothing else may run beside it in this test binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use cxr_cml::clip::{hub, Error};

const REPO: &str = "tiny-org/tiny-clip";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A hub that serves `files` (name -> bytes) of [`REPO`] at revision `main` or [`COMMIT`],
/// 404 for anything else; records every request's path.
struct FakeHub {
    endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    fn start(files: HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let files = Arc::new(files);
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log) = (Arc::clone(&files), Arc::clone(&log));
                std::thread::spawn(move || serve(stream, &files, &log));
            }
        });
        Self { endpoint, requests }
    }

    fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push(path.clone());
    let prefix_main = format!("/{REPO}/resolve/main/");
    let prefix_commit = format!("/{REPO}/resolve/{COMMIT}/");
    let file = path
        .strip_prefix(&prefix_main)
        .or_else(|| path.strip_prefix(&prefix_commit))
        .and_then(|name| files.get(name));
    let Some(body) = file else {
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nX-Error-Code: EntryNotFound\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n",
        );
        return;
    };
    let total = body.len();
    // `bytes=a-b` or `bytes=a-`, as hf-hub asks (a 0-0 probe for the metadata, then the rest).
    let (start, end) = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| {
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = b.parse().unwrap_or(total - 1).min(total - 1);
            (a, b)
        })
        .unwrap_or((0, total - 1));
    let part = &body[start..=end];
    let etag = format!("{:016x}", cxr_cml::data::stable_hash(body));
    let status = if range.is_some() {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nETag: \"{etag}\"\r\nX-Repo-Commit: {COMMIT}\r\n\
         Content-Range: bytes {start}-{end}/{total}\r\nAccept-Ranges: bytes\r\n\
         Content-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        part.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(part);
}

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/cxr-clip/tests/fixtures/tiny_hf");
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn hub_id_downloads_into_the_cache_then_resolves_offline() {
    let files: HashMap<String, Vec<u8>> = ["config.json", "model.safetensors"]
        .into_iter()
        .map(|f| (f.to_string(), fixture(f)))
        .collect();
    let server = FakeHub::start(files.clone());
    let home = tempfile::tempdir().unwrap();
    for var in [
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_TOKEN",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HF_HOME", home.path());
    std::env::set_var("HF_ENDPOINT", &server.endpoint);

    // Online: downloaded through hf-hub into HF_HOME/hub in the standard layout.
    let fetched = hub::fetch(REPO, true).unwrap();
    assert!(fetched.downloaded);
    let repo_dir = home.path().join("hub/models--tiny-org--tiny-clip");
    assert_eq!(fetched.cache, home.path().join("hub"));
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    assert_eq!(fetched.config, snapshot.join("config.json"));
    assert_eq!(fetched.weights, snapshot.join("model.safetensors"));
    for (name, bytes) in &files {
        assert_eq!(
            &std::fs::read(snapshot.join(name)).unwrap(),
            bytes,
            "{name}"
        );
        let blob = repo_dir
            .join("blobs")
            .join(format!("{:016x}", cxr_cml::data::stable_hash(bytes)));
        assert!(blob.is_file(), "blob of {name} named by its ETag");
    }
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main"))
            .unwrap()
            .trim(),
        COMMIT
    );
    assert!(
        server.request_count() >= 4,
        "a probe and a download per file"
    );
    let weights = hub::resolve_hub(REPO, false).unwrap();
    assert_eq!(weights.config.vision_config.image_size, {
        cxr_cml::clip::ClipWeights::from_hf_dir(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/cxr-clip/tests/fixtures/tiny_hf"),
        )
        .unwrap()
        .config
        .vision_config
        .image_size
    });
    // Already cached: no request at all.
    let before = server.request_count();
    assert!(!hub::fetch(REPO, false).unwrap().downloaded);
    assert_eq!(server.request_count(), before);

    // HF_HUB_OFFLINE=1: from the cache, no request; an id not cached is a clear error.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let offline = hub::resolve_online(REPO, false).unwrap();
    assert_eq!(offline.source, snapshot.join("model.safetensors"));
    let err = hub::fetch("tiny-org/not-cached", false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("tiny-org/not-cached") && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
    assert!(
        msg.contains(&home.path().join("hub").display().to_string()),
        "{msg}"
    );
    assert_eq!(server.request_count(), before);
    std::env::remove_var("HF_HUB_OFFLINE");

    // Online, a repository the hub does not have: an error naming the id and the URL.
    let err = hub::fetch("tiny-org/missing", false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Download { .. }), "{msg}");
    assert!(
        msg.contains("tiny-org/missing")
            && msg.contains(&format!(
                "{}/tiny-org/missing/resolve/main/config.json",
                server.endpoint
            ))
            && msg.contains("does not exist"),
        "{msg}"
    );
}
