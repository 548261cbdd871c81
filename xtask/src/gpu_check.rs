//! `cargo xtask gpu-check`: prove and time every CUDA path in one call (docs/gpu.md).
//!
//! Each check of `cxr_train::gpu_check::STEPS` runs in a child process of this binary
//! (`gpu-check --step ID`) with a time limit, so a crash, a hang or a CUDA error in one check is
//! recorded and the next one runs. After every step the report, `OUT/gpu-report.json` and
//! `OUT/gpu-report.md`, is rewritten, so even a run killed from outside leaves a complete,
//! valid report (steps not reached are `pending`). `--reference FILE` (the JSON written by
//! `scripts/gpu/reference.py`) adds the PyTorch / scikit-learn numbers and the ratios;
//! `--merge` only adds them to an existing report.
//!
//! `--dry-run` runs every check on the CPU with tiny shapes (its "device" fields read
//! `dry-run`): it proves the script and the report, not CUDA.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use cxr_train::gpu_check::{Probe, STEPS};

/// The report's schema name; bump it when a field changes meaning.
pub const SCHEMA: &str = "cxr-cml-gpu-report/1";

/// Prove and time the CUDA paths against the CPU; writes OUT/gpu-report.{json,md}.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report folder (created; gpu-report.json, gpu-report.md and steps/ are written there).
    #[arg(long)]
    pub out: PathBuf,
    /// CPU only, tiny shapes, every step (proves the script and the report, not CUDA).
    #[arg(long)]
    pub dry_run: bool,
    /// The device under test: `cuda`, `cuda:N` or `cpu` (ignored by --dry-run, which uses the
    /// CPU).
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// Overall time budget in seconds; steps that would start after it are `skipped`.
    #[arg(long, default_value_t = 330)]
    pub budget_s: u64,
    /// Time limit of one step in seconds (a step past it is killed and recorded as `timeout`).
    #[arg(long, default_value_t = 90)]
    pub step_timeout_s: u64,
    /// JSON describing the host (driver, GPU, libraries found), written by check.sh; merged
    /// into the report's `environment`.
    #[arg(long)]
    pub environment: Option<PathBuf>,
    /// The reference timings written by scripts/gpu/reference.py; adds `reference` and `ratios`.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Only merge --reference (and --environment) into the existing report in --out, then
    /// rewrite it; runs no step.
    #[arg(long)]
    pub merge: bool,
    /// Run only these steps (repeatable; default: all).
    #[arg(long = "only", value_name = "STEP")]
    pub only: Vec<String>,
    /// Internal: run one step in this process and write OUT/steps/STEP.json.
    #[arg(long, hide = true)]
    pub step: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(step) = &a.step {
        return run_child(&a, step);
    }
    std::fs::create_dir_all(a.out.join("steps"))
        .with_context(|| format!("creating the report folder {} (--out)", a.out.display()))?;
    if a.merge {
        let path = a.out.join("gpu-report.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "--merge needs an existing report: {} (run gpu-check first)",
                path.display()
            )
        })?;
        let mut report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        merge_inputs(&a, &mut report)?;
        return write_report(&a.out, &report);
    }
    for s in &a.only {
        if !STEPS.iter().any(|(id, _, _)| id == s) && s != "device" {
            bail!(
                "--only {s}: unknown step; known: device, {}",
                STEPS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let started = Instant::now();
    let mut report = skeleton(&a);
    merge_inputs(&a, &mut report)?;
    write_report(&a.out, &report)?;

    let mut ids: Vec<(&str, &str, &str)> = vec![(
        "device",
        "environment",
        "Open the device, one small computation, read back",
    )];
    ids.extend(STEPS.iter().copied());
    let total = ids.len();
    let sampler = MemorySampler::available(a.dry_run);
    for (i, (id, _, _)) in ids.iter().enumerate() {
        let selected = a.only.is_empty() || a.only.iter().any(|s| s == id) || *id == "device";
        let left = a.budget_s as f64 - started.elapsed().as_secs_f64();
        let entry = if !selected {
            json!({"status": "skipped", "error": "not selected (--only)"})
        } else if left < 5.0 {
            json!({"status": "skipped", "error": format!("overall budget of {} s spent (--budget-s)", a.budget_s)})
        } else {
            let limit = (a.step_timeout_s as f64).min(left);
            eprintln!("[gpu-check] {}/{total} {id} (limit {limit:.0} s)", i + 1);
            run_step(&a, id, Duration::from_secs_f64(limit), sampler.as_ref())
        };
        eprintln!(
            "[gpu-check] {}/{total} {id}: {}",
            i + 1,
            entry["status"].as_str().unwrap_or("?")
        );
        set_step(&mut report, id, entry);
        report["elapsed_s"] = json!(started.elapsed().as_secs_f64());
        write_report(&a.out, &report)?;
    }
    report["finished"] = json!(true);
    write_report(&a.out, &report)?;
    eprintln!(
        "[gpu-check] report: {}",
        a.out.join("gpu-report.md").display()
    );
    Ok(())
}

/// The report before any step ran: every step `pending`.
fn skeleton(a: &Args) -> Value {
    let mut steps = vec![json!({"id": "device", "group": "environment",
        "title": "Open the device, one small computation, read back", "status": "pending"})];
    for (id, group, title) in STEPS {
        steps.push(json!({"id": id, "group": group, "title": title, "status": "pending"}));
    }
    json!({
        "schema": SCHEMA,
        "mode": if a.dry_run { "dry-run" } else { "device" },
        "device": if a.dry_run { "dry-run" } else { a.device.as_str() },
        "created_unix_s": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "budget_s": a.budget_s,
        "step_timeout_s": a.step_timeout_s,
        "elapsed_s": 0.0,
        "finished": false,
        "build": {
            "xtask_version": env!("CARGO_PKG_VERSION"),
            "cuda_feature": cfg!(feature = "cuda"),
            "cuda_libraries": if cfg!(feature = "cuda") {
                "loaded at run time by cudarc when bundle.sh built it (dynamic-loading); linked if built with plain `cargo build --features cuda` (candle's dynamic-linking)"
            } else {
                "none (CPU build)"
            },
            "executable": std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
        },
        "environment": {},
        "memory_measurement": if a.dry_run { "dry-run" } else { "nvidia-smi --query-gpu=memory.used sampled every 100 ms while a step runs (whole GPU, MiB); peak minus the sample before the step" },
        "steps": steps,
        "reference": Value::Null,
        "ratios": [],
    })
}

fn set_step(report: &mut Value, id: &str, entry: Value) {
    if let Some(steps) = report["steps"].as_array_mut() {
        if let Some(s) = steps.iter_mut().find(|s| s["id"] == id) {
            if let (Some(m), Value::Object(e)) = (s.as_object_mut(), entry) {
                m.extend(e);
            }
        }
    }
}

/// Merge --environment and --reference into the report (and recompute the ratios).
fn merge_inputs(a: &Args, report: &mut Value) -> Result<()> {
    if let Some(path) = &a.environment {
        match read_json(path) {
            Ok(Value::Object(env)) => {
                if let Some(m) = report["environment"].as_object_mut() {
                    m.extend(env);
                }
            }
            Ok(_) => {
                report["environment"]["error"] =
                    json!(format!("{} is not a JSON object", path.display()))
            }
            Err(e) => report["environment"]["error"] = json!(format!("{e:#}")),
        }
    }
    if let Some(path) = &a.reference {
        report["reference"] = match read_json(path) {
            Ok(v) => v,
            Err(e) => json!({"status": "missing", "error": format!("{e:#}")}),
        };
    }
    report["ratios"] = Value::Array(ratios(report));
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Ours against the reference for every speed step both have.
fn ratios(report: &Value) -> Vec<Value> {
    let ours = |id: &str| -> Option<&Value> {
        report["steps"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == id && s["status"] == "ok")
            .map(|s| &s["result"])
    };
    let reference = |id: &str| -> Option<&Value> {
        let r = &report["reference"]["steps"][id];
        (r["status"] == "ok").then_some(r)
    };
    let mut out = Vec::new();
    for batch in [32, 256] {
        for p in ["f32", "bf16"] {
            let (o, r) = (
                format!("speed_train_b{batch}_{p}"),
                format!("torch_train_b{batch}_{p}"),
            );
            if let (Some(x), Some(y)) = (ours(&o), reference(&r)) {
                if let (Some(a), Some(b)) = (x["images_per_s"].as_f64(), y["images_per_s"].as_f64())
                {
                    out.push(json!({"ours": o, "reference": r, "metric": "images/s",
                        "ours_value": a, "reference_value": b, "ratio": a / b,
                        "meaning": "ours / PyTorch eager throughput (> 1: ours faster)"}));
                }
            }
        }
    }
    if let (Some(x), Some(y)) = (ours("speed_embed"), reference("torch_embed")) {
        if let (Some(a), Some(b)) = (x["images_per_s"].as_f64(), y["images_per_s"].as_f64()) {
            out.push(
                json!({"ours": "speed_embed", "reference": "torch_embed", "metric": "images/s",
                "ours_value": a, "reference_value": b, "ratio": a / b,
                "meaning": "ours / PyTorch eager throughput (> 1: ours faster)"}),
            );
        }
    }
    for (o, r) in [
        ("speed_gmm_diag", "sklearn_gmm_diag"),
        ("speed_gmm_full", "sklearn_gmm_full"),
    ] {
        if let (Some(x), Some(y)) = (ours(o), reference(r)) {
            if let (Some(a), Some(b)) = (
                x["seconds_per_iteration"].as_f64(),
                y["seconds_per_iteration"].as_f64(),
            ) {
                out.push(
                    json!({"ours": o, "reference": r, "metric": "seconds per EM iteration",
                    "ours_value": a, "reference_value": b, "ratio": b / a,
                    "meaning": "scikit-learn time / ours (> 1: ours faster)"}),
                );
            }
        }
    }
    out
}

/// Run one step in a child process within `limit`; the step's report entry.
fn run_step(a: &Args, id: &str, limit: Duration, sampler: Option<&MemorySampler>) -> Value {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return json!({"status": "error", "error": format!("locating this executable: {e}")})
        }
    };
    let result_path = a.out.join("steps").join(format!("{id}.json"));
    let log_path = a.out.join("steps").join(format!("{id}.log"));
    let _ = std::fs::remove_file(&result_path);
    let mut cmd = Command::new(exe);
    cmd.arg("gpu-check")
        .arg("--out")
        .arg(&a.out)
        .arg("--step")
        .arg(id);
    cmd.arg("--device").arg(&a.device);
    if a.dry_run {
        cmd.arg("--dry-run");
    }
    let log = std::fs::File::create(&log_path);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    match log {
        Ok(f) => cmd.stderr(f),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let start = Instant::now();
    let mut mem = sampler.and_then(|s| s.start());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return json!({"status": "error", "error": format!("starting the step process: {e}")})
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                return json!({"status": "error", "error": format!("waiting for the step: {e}")});
            }
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let memory = mem.as_mut().map(|m| m.finish()).unwrap_or_else(|| {
        if a.dry_run {
            json!("dry-run")
        } else {
            json!("not measured (nvidia-smi not found)")
        }
    });
    let tail = log_tail(&log_path);
    let mut entry = match status {
        None => json!({"status": "timeout",
            "error": format!("killed after {:.0} s (--step-timeout-s or the overall budget)", limit.as_secs_f64())}),
        Some(s) if !s.success() => json!({"status": "error",
            "error": format!("step process exited with {s}; last log lines:\n{tail}")}),
        Some(_) => match read_json(&result_path) {
            Err(e) => json!({"status": "error", "error": format!("{e:#}")}),
            Ok(result) => {
                let status = if let Some(s) = result["status"].as_str() {
                    s.to_string()
                } else if result["ok"] == false {
                    "fail".into()
                } else {
                    "ok".into()
                };
                json!({"status": status, "result": result})
            }
        },
    };
    entry["seconds"] = json!(seconds);
    entry["gpu_memory"] = memory;
    entry
}

/// The last lines of a step's log.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    // From the panic or error line when there is one (a backtrace note follows it).
    let from = lines
        .iter()
        .position(|l| l.contains("panicked at") || l.starts_with("Error:"))
        .unwrap_or(0)
        .max(lines.len().saturating_sub(15));
    let from = lines
        .iter()
        .rposition(|l| l.contains("panicked at") || l.starts_with("Error:"))
        .map_or(from, |p| p.min(from));
    lines[from..lines.len().min(from + 15)].join("\n")
}

/// The child: run one step here and write its JSON.
fn run_child(a: &Args, id: &str) -> Result<()> {
    let (device, mixture_device) = if a.dry_run {
        (candle_core::Device::Cpu, cxr_mixture::Device::Cpu)
    } else {
        (
            cxr_train::device::open(&a.device)?,
            cxr_train::device::mixture(&a.device)?,
        )
    };
    let result = if id == "device" {
        let start = Instant::now();
        let x = candle_core::Tensor::arange(0f32, 1024.0, &device)?.reshape((32, 32))?;
        let y = x.matmul(&x.t()?)?.sum_all()?.to_scalar::<f32>()?;
        let expected: f64 = (0..32)
            .map(|i| {
                (0..32)
                    .map(|j| {
                        (0..32)
                            .map(|k| ((i * 32 + k) * (j * 32 + k)) as f64)
                            .sum::<f64>()
                    })
                    .sum::<f64>()
            })
            .sum();
        json!({
            "device": if a.dry_run { "dry-run".to_string() } else { format!("{device:?}") },
            "ok": ((y as f64 - expected) / expected).abs() < 1e-5,
            "open_and_first_op_seconds": start.elapsed().as_secs_f64(),
            "matmul_sum": y, "expected": expected,
        })
    } else {
        Probe {
            device,
            mixture_device,
            dry_run: a.dry_run,
        }
        .run(id)?
    };
    let path = a.out.join("steps").join(format!("{id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Peak GPU memory while a step runs, from `nvidia-smi` sampling (NVML's view of the whole GPU).
struct MemorySampler;

struct Sampling {
    child: Child,
}

impl MemorySampler {
    fn available(dry_run: bool) -> Option<Self> {
        if dry_run {
            return None;
        }
        let ok = Command::new("nvidia-smi")
            .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(MemorySampler)
    }

    fn start(&self) -> Option<Sampling> {
        Command::new("nvidia-smi")
            .args([
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(|child| Sampling { child })
    }
}

impl Sampling {
    fn finish(&mut self) -> Value {
        let _ = self.child.kill();
        let mut text = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let _ = out.read_to_string(&mut text);
        }
        let _ = self.child.wait();
        // One line per GPU per sample; the first GPU (the check uses one).
        let samples: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split(',').next()?.trim().parse().ok())
            .collect();
        match (samples.first(), samples.iter().cloned().reduce(f64::max)) {
            (Some(&base), Some(peak)) => json!({"baseline_mib": base, "peak_mib": peak,
                "peak_over_baseline_mib": peak - base, "samples": samples.len()}),
            _ => json!("no samples (step shorter than the first sample?)"),
        }
    }
}

/// Write gpu-report.json and gpu-report.md (each through a temporary file and a rename).
fn write_report(out: &Path, report: &Value) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let tmp = out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, out.join(name))
            .with_context(|| format!("renaming {} into place", tmp.display()))
    };
    write("gpu-report.json", &serde_json::to_vec_pretty(report)?)?;
    write("gpu-report.md", markdown(report).as_bytes())
}

fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) => format!("{x:.2e}"),
        Some(x) => format!("{x:.digits$}"),
        None => "–".into(),
    }
}

/// The report as Markdown: environment, the step table, each check, the ratios.
pub fn markdown(r: &Value) -> String {
    let mut md = String::new();
    let push = |md: &mut String, s: String| {
        md.push_str(&s);
        md.push('\n');
    };
    push(
        &mut md,
        format!("# GPU check ({})\n", r["mode"].as_str().unwrap_or("?")),
    );
    push(
        &mut md,
        format!(
            "Device `{}`; {} s of a {} s budget; {}.\n",
            r["device"].as_str().unwrap_or("?"),
            num(&r["elapsed_s"], 1),
            r["budget_s"],
            if r["finished"] == true {
                "finished"
            } else {
                "not finished (partial report)"
            }
        ),
    );
    push(&mut md, "## Environment\n".into());
    push(&mut md, "| key | value |\n|---|---|".into());
    let mut flat = Map::new();
    for (k, v) in r["build"].as_object().into_iter().flatten() {
        flat.insert(format!("build.{k}"), v.clone());
    }
    for (k, v) in r["environment"].as_object().into_iter().flatten() {
        flat.insert(k.clone(), v.clone());
    }
    for (k, v) in &flat {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        push(
            &mut md,
            format!("| {k} | {} |", text.replace('|', "\\|").replace('\n', " ")),
        );
    }
    push(&mut md, String::new());
    push(&mut md, "## Steps\n".into());
    push(&mut md, "| step | group | status | seconds | result | GPU memory peak over baseline (MiB) |\n|---|---|---|---|---|---|".into());
    let steps = r["steps"].as_array().cloned().unwrap_or_default();
    for s in &steps {
        let res = &s["result"];
        let summary = if let Some(v) = res.get("images_per_s") {
            format!("{} images/s", num(v, 1))
        } else if let Some(v) = res.get("seconds_per_iteration") {
            format!("{} s/iteration", num(v, 3))
        } else if let Some(checks) = res["checks"].as_array() {
            let bad = checks.iter().filter(|c| c["ok"] != true).count();
            format!("{} checks, {bad} over bound", checks.len())
        } else if let Some(e) = s["error"].as_str().or(res["note"].as_str()) {
            e.lines().next().unwrap_or("").chars().take(100).collect()
        } else {
            String::new()
        };
        let mem = match &s["gpu_memory"] {
            Value::Object(m) => num(&m["peak_over_baseline_mib"], 0),
            Value::String(t) => t.clone(),
            _ => "–".into(),
        };
        push(
            &mut md,
            format!(
                "| {} | {} | {} | {} | {} | {} |",
                s["id"].as_str().unwrap_or("?"),
                s["group"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or("?"),
                num(&s["seconds"], 1),
                summary.replace('|', "\\|"),
                mem
            ),
        );
    }
    push(&mut md, String::new());
    push(&mut md, "## Correctness: device against CPU\n".into());
    push(
        &mut md,
        "Relative error = max |device − CPU| / max |CPU| over the tensor.\n".into(),
    );
    push(&mut md, "| step | quantity | max abs error | relative error | bound | ok |\n|---|---|---|---|---|---|".into());
    for s in &steps {
        let all = s["result"]["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // Long lists (one row per parameter gradient): the rows over their bound and the
        // three largest relative errors; the JSON has every row.
        let shown: Vec<Value> = if all.len() > 12 {
            let mut by_rel = all.clone();
            by_rel.sort_by(|a, b| {
                let r = |c: &Value| c["max_rel"].as_f64().unwrap_or(f64::INFINITY);
                r(b).total_cmp(&r(a))
            });
            let mut keep: Vec<Value> = by_rel.iter().filter(|c| c["ok"] != true).cloned().collect();
            keep.extend(by_rel.iter().filter(|c| c["ok"] == true).take(3).cloned());
            push(
                &mut md,
                format!(
                    "| {} | *{} quantities; shown: those over bound and the 3 largest errors* | | | | |",
                    s["id"].as_str().unwrap_or("?"),
                    all.len()
                ),
            );
            keep
        } else {
            all
        };
        for c in &shown {
            let rel = if c.get("max_rel").is_some() {
                num(&c["max_rel"], 3)
            } else {
                format!("{} vs {}", c["value"], c["reference"])
            };
            push(
                &mut md,
                format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    s["id"].as_str().unwrap_or("?"),
                    c["what"].as_str().unwrap_or("?"),
                    num(&c["max_abs"], 3),
                    rel,
                    num(&c["bound"], 3),
                    if c["ok"] == true { "yes" } else { "**no**" }
                ),
            );
        }
    }
    push(&mut md, String::new());
    push(
        &mut md,
        "## Against the references (same machine, same run)\n".into(),
    );
    if r["mode"] == "dry-run" {
        push(
            &mut md,
            "*Dry run: tiny shapes on the CPU. These numbers prove the plumbing; they are not \
             benchmarks.*\n"
                .into(),
        );
    }
    match &r["reference"] {
        Value::Null => push(
            &mut md,
            "No reference run (scripts/gpu/reference.py) was merged.\n".into(),
        ),
        reference => {
            for (id, v) in reference["steps"].as_object().into_iter().flatten() {
                let what = v
                    .get("images_per_s")
                    .map(|x| format!("{} images/s", num(x, 1)))
                    .or_else(|| {
                        v.get("seconds_per_iteration")
                            .map(|x| format!("{} s/iteration", num(x, 3)))
                    })
                    .unwrap_or_else(|| {
                        v["error"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(100)
                            .collect()
                    });
                push(
                    &mut md,
                    format!("- `{id}`: {} {}", v["status"].as_str().unwrap_or("?"), what),
                );
            }
            if let Some(e) = reference["error"].as_str() {
                push(&mut md, format!("- reference: {e}"));
            }
            push(&mut md, String::new());
            push(&mut md, "| ours | reference | metric | ours | reference | ratio | meaning |\n|---|---|---|---|---|---|---|".into());
            for x in r["ratios"].as_array().into_iter().flatten() {
                push(
                    &mut md,
                    format!(
                        "| {} | {} | {} | {} | {} | {} | {} |",
                        x["ours"].as_str().unwrap_or(""),
                        x["reference"].as_str().unwrap_or(""),
                        x["metric"].as_str().unwrap_or(""),
                        num(&x["ours_value"], 3),
                        num(&x["reference_value"], 3),
                        num(&x["ratio"], 2),
                        x["meaning"].as_str().unwrap_or("")
                    ),
                );
            }
        }
    }
    md
}
