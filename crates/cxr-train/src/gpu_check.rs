//! The measurements of the GPU check (`cargo xtask gpu-check`, `docs/gpu.md`): every CUDA path
//! of a run compared with the CPU (a tiny CLIP forward and backward, the fused AdamW kernel,
//! the mixture E-step and EM fits, one CXR-CML training step, zero-shot scoring), and the speed
//! of the steps a real run spends its time in (training steps, embedding, mixture fits).
//!
//! Each check is one function of a [`Probe`] (which device, which shapes) returning a JSON
//! object; the CLI runs each in a child process with a time limit and assembles the report.
//! A correctness check returns `checks`: for each compared quantity the largest absolute
//! error, the largest error relative to the reference's largest magnitude
//! (`max |x - ref| / max |ref|`), the bound that relative error must stay under, and `ok`.
//! In a dry run the "device" is the CPU too (every error is then 0): it proves the plumbing,
//! not CUDA.

use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use cxr_clip::{ClipConfig, ClipModel};
use cxr_mixture::{CovarianceType, GaussianMixture, StudentMixture};
use cxr_optim::{AdamW, AdamWConfig, Optimizer};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::{json, Value};

use crate::config::{Method, ModelPreset, TrainConfig};
use crate::model::{build_optimizer, named_vars, trainable_vars};
use crate::step::{apply, Objective};
use crate::{Result, TrainError};

/// The end-of-text token CLIP pools the text tower at (the largest id in a sequence).
const EOT: u32 = 49407;
const SEED: u64 = 20_241_201;

/// The checks, in report order: (id, group, title).
pub const STEPS: &[(&str, &str, &str)] = &[
    (
        "clip_forward_backward",
        "correctness",
        "Tiny CLIP forward + backward (embeddings, loss, every parameter's gradient)",
    ),
    (
        "adamw",
        "correctness",
        "Fused AdamW kernel (cxr-optim), 5 steps",
    ),
    (
        "mixture_estep",
        "correctness",
        "Mixture E-step (responsibilities, log-likelihood), GMM full / diag and Student-t",
    ),
    (
        "mixture_em_fit",
        "correctness",
        "Full EM fits (GMM diag, Student-t diag) on the device's E-step",
    ),
    (
        "train_step",
        "correctness",
        "One CXR-CML training step (pseudo-labels, CLIP + triplet loss, clipping, AdamW)",
    ),
    (
        "zero_shot",
        "correctness",
        "Zero-shot scoring (image and prompt embeddings, CheXzero probabilities)",
    ),
    (
        "speed_train_b32_f32",
        "speed",
        "ViT-B/32 training step, batch 32, f32",
    ),
    (
        "speed_train_b32_bf16",
        "speed",
        "ViT-B/32 training step, batch 32, bf16 mixed precision",
    ),
    (
        "speed_train_b256_f32",
        "speed",
        "ViT-B/32 training step, batch 256, f32",
    ),
    (
        "speed_train_b256_bf16",
        "speed",
        "ViT-B/32 training step, batch 256, bf16 mixed precision",
    ),
    (
        "speed_embed",
        "speed",
        "Zero-shot image embedding throughput (ViT-B/32, batch 256, no autograd)",
    ),
    (
        "speed_gmm_diag",
        "speed",
        "GMM diag EM, N = 50,000, K = 40, D = 512",
    ),
    (
        "speed_gmm_full",
        "speed",
        "GMM full EM, N = 50,000, K = 40, D = 512",
    ),
    (
        "speed_student_t",
        "speed",
        "Student-t EM (diag), N = 50,000, K = 40, D = 512",
    ),
];

/// Where and how large: the device under test against the CPU, real or dry-run shapes.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The device under test (`Device::Cpu` in a dry run).
    pub device: Device,
    /// The mixture E-step's device under test.
    pub mixture_device: cxr_mixture::Device,
    /// Tiny shapes and few iterations (CPU, seconds).
    pub dry_run: bool,
}

impl Probe {
    /// Run the check `id` (one of [`STEPS`]).
    pub fn run(&self, id: &str) -> Result<Value> {
        match id {
            "clip_forward_backward" => self.clip_forward_backward(),
            "adamw" => self.adamw(),
            "mixture_estep" => self.mixture_estep(),
            "mixture_em_fit" => self.mixture_em_fit(),
            "train_step" => self.train_step(),
            "zero_shot" => self.zero_shot(),
            "speed_train_b32_f32" => self.speed_train(32, false),
            "speed_train_b32_bf16" => self.speed_train(32, true),
            "speed_train_b256_f32" => self.speed_train(256, false),
            "speed_train_b256_bf16" => self.speed_train(256, true),
            "speed_embed" => self.speed_embed(),
            "speed_gmm_diag" => self.speed_mixture(false, CovarianceType::Diag),
            "speed_gmm_full" => self.speed_mixture(false, CovarianceType::Full),
            "speed_student_t" => self.speed_mixture(true, CovarianceType::Diag),
            other => Err(TrainError::Config(format!(
                "unknown gpu-check step `{other}`; known: {}",
                STEPS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn device_name(&self) -> &'static str {
        if self.dry_run {
            "dry-run"
        } else if self.device.is_cuda() {
            "cuda"
        } else {
            "cpu"
        }
    }

    // ---- correctness -------------------------------------------------------------------

    fn clip_forward_backward(&self) -> Result<Value> {
        let cfg = ClipConfig::tiny(32);
        let (cpu_vars, cpu_model) = seeded_model(&cfg, &Device::Cpu)?;
        let (dev_vars, dev_model) = copy_model(&cpu_vars, &cfg, &self.device)?;
        let (pixels, ids) = inputs(&cfg, 8, SEED)?;
        let run =
            |model: &ClipModel, dev: &Device| -> Result<(Tensor, Tensor, Tensor, GradStore)> {
                let img = model.encode_image(&pixels.to_device(dev)?)?;
                let txt = model.encode_text(&ids.to_device(dev)?)?;
                let loss = cxr_losses::clip_loss(&img, &txt, model.logit_scale())?;
                let grads = loss.backward()?;
                Ok((img, txt, loss, grads))
            };
        let (ci, ct, cl, cg) = run(&cpu_model, &Device::Cpu)?;
        let (di, dt, dl, dg) = run(&dev_model, &self.device)?;
        let mut checks = vec![
            compare("image embeddings", &di, &ci, 1e-4)?,
            compare("text embeddings", &dt, &ct, 1e-4)?,
            compare("loss", &dl, &cl, 1e-4)?,
        ];
        let dev_named = named_vars(&dev_vars);
        for ((name, cv), (_, dv)) in named_vars(&cpu_vars).iter().zip(&dev_named) {
            match (cg.get(cv.as_tensor()), dg.get(dv.as_tensor())) {
                (Some(c), Some(d)) => checks.push(compare(&format!("grad {name}"), d, c, 1e-3)?),
                (c, d) => checks.push(json!({
                    "what": format!("grad {name}"), "ok": false,
                    "note": format!("gradient present on cpu: {}, on device: {}", c.is_some(), d.is_some()),
                })),
            }
        }
        Ok(self.checked(
            checks,
            json!({"model": "tiny CLIP (32 px, width 64, 2 layers)", "batch": 8}),
        ))
    }

    fn adamw(&self) -> Result<Value> {
        let shapes: &[(usize, usize)] = if self.dry_run {
            &[(64, 32), (1, 32)]
        } else {
            &[(4096, 512), (1, 512), (49408, 512)]
        };
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut data = Vec::new();
        for &(r, c) in shapes {
            data.push((normal(&mut rng, r * c), normal(&mut rng, r * c), (r, c)));
        }
        let cfg = AdamWConfig {
            lr: 1e-3,
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let run = |dev: &Device| -> Result<(Vec<Tensor>, f64)> {
            let mut params = Vec::new();
            let mut grads = GradStore::default();
            for (i, (p, g, shape)) in data.iter().enumerate() {
                let v = Var::from_tensor(&Tensor::from_vec(p.clone(), *shape, dev)?)?;
                grads.insert(v.as_tensor(), Tensor::from_vec(g.clone(), *shape, dev)?);
                params.push((format!("p{i}.weight"), v));
            }
            let mut opt = AdamW::new(params.clone(), cfg.clone(), cxr_optim::default_decay_filter)?;
            let start = Instant::now();
            for _ in 0..5 {
                opt.step(&grads)?;
            }
            let out: Vec<Tensor> = params.iter().map(|(_, v)| v.as_tensor().clone()).collect();
            // Reading a value back waits for the device.
            out[0].sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            Ok((out, start.elapsed().as_secs_f64()))
        };
        let (cpu, _) = run(&Device::Cpu)?;
        let (dev, secs) = run(&self.device)?;
        let mut checks = Vec::new();
        for (i, (d, c)) in dev.iter().zip(&cpu).enumerate() {
            checks.push(compare(
                &format!("p{i} {:?} after 5 steps", shapes[i]),
                d,
                c,
                1e-5,
            )?);
        }
        let n: usize = shapes.iter().map(|(r, c)| r * c).sum();
        Ok(self.checked(
            checks,
            json!({"parameters": n, "seconds_5_steps_device": secs}),
        ))
    }

    fn mixture_sizes(&self) -> (usize, usize, usize) {
        if self.dry_run {
            (600, 4, 8)
        } else {
            (4096, 8, 32)
        }
    }

    fn mixture_estep(&self) -> Result<Value> {
        let (n, k, d) = self.mixture_sizes();
        let x = blobs(n, k, d, SEED);
        let mut checks = Vec::new();
        for cov in [CovarianceType::Full, CovarianceType::Diag] {
            let gmm = GaussianMixture::params(k)
                .covariance_type(cov)
                .seed(SEED)
                .max_iter(10)
                .fit(x.view())?;
            let on_dev = gmm.clone().with_device(self.mixture_device);
            let tag = format!("GMM {cov:?}");
            checks.push(compare_arr(
                &format!("{tag} responsibilities"),
                &on_dev.predict_proba(x.view())?,
                &gmm.predict_proba(x.view())?,
                1e-6,
            ));
            checks.push(compare_arr(
                &format!("{tag} log-likelihood per sample"),
                &on_dev
                    .score_samples(x.view())?
                    .insert_axis(ndarray::Axis(1)),
                &gmm.score_samples(x.view())?.insert_axis(ndarray::Axis(1)),
                1e-9,
            ));
        }
        let st = StudentMixture::params(k)
            .covariance_type(CovarianceType::Diag)
            .seed(SEED)
            .max_iter(10)
            .fit(x.view())?;
        let st_dev = st.clone().with_device(self.mixture_device);
        checks.push(compare_arr(
            "Student-t diag responsibilities",
            &st_dev.predict_proba(x.view())?,
            &st.predict_proba(x.view())?,
            1e-6,
        ));
        Ok(self.checked(checks, json!({"n": n, "k": k, "d": d})))
    }

    fn mixture_em_fit(&self) -> Result<Value> {
        let (n, k, d) = self.mixture_sizes();
        let x = blobs(n, k, d, SEED + 1);
        let gmm = |dev| {
            GaussianMixture::params(k)
                .covariance_type(CovarianceType::Diag)
                .seed(SEED)
                .max_iter(30)
                .device(dev)
                .fit(x.view())
        };
        let st = |dev| {
            StudentMixture::params(k)
                .covariance_type(CovarianceType::Diag)
                .seed(SEED)
                .max_iter(30)
                .device(dev)
                .fit(x.view())
        };
        let (gc, gd) = (gmm(cxr_mixture::Device::Cpu)?, gmm(self.mixture_device)?);
        let (sc, sd) = (st(cxr_mixture::Device::Cpu)?, st(self.mixture_device)?);
        let scalar = |v: f64| Array2::from_elem((1, 1), v);
        let checks = vec![
            compare_arr("GMM means", gd.means(), gc.means(), 1e-6),
            compare_arr(
                "GMM weights",
                &gd.weights().clone().insert_axis(ndarray::Axis(1)),
                &gc.weights().clone().insert_axis(ndarray::Axis(1)),
                1e-6,
            ),
            compare_arr(
                "GMM lower bound",
                &scalar(gd.lower_bound()),
                &scalar(gc.lower_bound()),
                1e-9,
            ),
            equal("GMM iterations", gd.n_iter(), gc.n_iter()),
            compare_arr("Student-t means", sd.means(), sc.means(), 1e-6),
            compare_arr(
                "Student-t lower bound",
                &scalar(sd.lower_bound()),
                &scalar(sc.lower_bound()),
                1e-9,
            ),
            equal("Student-t iterations", sd.n_iter(), sc.n_iter()),
        ];
        Ok(self.checked(
            checks,
            json!({"n": n, "k": k, "d": d, "covariance": "diag"}),
        ))
    }

    fn train_step(&self) -> Result<Value> {
        let mut cfg = TrainConfig::paper();
        cfg.method = Method::CxrCml;
        cfg.model.preset = ModelPreset::Tiny;
        cfg.model.image_size = 32;
        cfg.mixture.k = 4;
        cfg.optim.lr = 1e-3;
        cfg.optim.grad_clip = Some(1.0);
        let clip = crate::model::clip_config(&cfg);
        let (cpu_vars, cpu_model) = seeded_model(&clip, &Device::Cpu)?;
        let (dev_vars, dev_model) = copy_model(&cpu_vars, &clip, &self.device)?;
        let (pixels, ids) = inputs(&clip, 16, SEED + 2)?;
        let step = |vars: &VarMap, model: &ClipModel, dev: &Device| -> Result<(f64, Option<f64>)> {
            let mut objective = Objective::new(&cfg, None)?;
            let params = trainable_vars(&cfg, vars);
            let mut opt = build_optimizer(&cfg, vars)?;
            let mut out = objective.loss_and_grads(
                model,
                &pixels.to_device(dev)?,
                &ids.to_device(dev)?,
                &params,
            )?;
            let norm = apply(&cfg, opt.as_mut(), &mut out.grads, &params)?;
            Ok((out.total.to_dtype(DType::F64)?.to_scalar::<f64>()?, norm))
        };
        let (cl, cn) = step(&cpu_vars, &cpu_model, &Device::Cpu)?;
        let (dl, dn) = step(&dev_vars, &dev_model, &self.device)?;
        let scalar = |v: f64| Array2::from_elem((1, 1), v);
        let mut checks = vec![
            compare_arr(
                "loss (CLIP + triplet on pseudo-labels)",
                &scalar(dl),
                &scalar(cl),
                1e-3,
            ),
            compare_arr(
                "gradient norm before clipping",
                &scalar(dn.unwrap_or(f64::NAN)),
                &scalar(cn.unwrap_or(f64::NAN)),
                1e-3,
            ),
        ];
        let mut worst: Option<Value> = None;
        let mut worst_rel = -1.0;
        for ((name, cv), (_, dv)) in named_vars(&cpu_vars)
            .iter()
            .zip(named_vars(&dev_vars).iter())
        {
            let c = compare(
                &format!("parameter {name} after the step"),
                dv.as_tensor(),
                cv.as_tensor(),
                1e-4,
            )?;
            let rel = c["max_rel"].as_f64().unwrap_or(f64::INFINITY);
            if rel > worst_rel || !rel.is_finite() {
                worst_rel = rel;
                worst = Some(c);
            }
        }
        checks.extend(worst);
        Ok(self.checked(
            checks,
            json!({"model": "tiny CLIP (32 px)", "batch": 16, "note": "pseudo-labels come from a fit on each device's own embeddings; a flipped label shows as a loss mismatch; the parameter row is the worst parameter"}),
        ))
    }

    fn zero_shot(&self) -> Result<Value> {
        let cfg = ClipConfig::tiny(32);
        let (cpu_vars, _) = seeded_model(&cfg, &Device::Cpu)?;
        let cpu_eval = eval_model(&cpu_vars, &cfg, &Device::Cpu)?;
        let dev_eval = eval_model(&cpu_vars, &cfg, &self.device)?;
        let (pixels, _) = inputs(&cfg, 24, SEED + 3)?;
        let (_, pos_ids) = inputs(&cfg, 5, SEED + 4)?;
        let (_, neg_ids) = inputs(&cfg, 5, SEED + 5)?;
        let probs = |model: &ClipModel, dev: &Device| -> Result<Array2<f32>> {
            let img = host(&cxr_losses::l2_normalise(
                &model.encode_image(&pixels.to_device(dev)?)?,
            )?)?;
            let p = host(&cxr_losses::l2_normalise(
                &model.encode_text(&pos_ids.to_device(dev)?)?,
            )?)?;
            let n = host(&cxr_losses::l2_normalise(
                &model.encode_text(&neg_ids.to_device(dev)?)?,
            )?)?;
            Ok(cxr_eval::zero_shot_probabilities(
                img.view(),
                p.view(),
                n.view(),
            )?)
        };
        let c = probs(&cpu_eval, &Device::Cpu)?.mapv(f64::from);
        let d = probs(&dev_eval, &self.device)?.mapv(f64::from);
        let checks = vec![compare_arr(
            "zero-shot probabilities (24 images x 5 classes)",
            &d,
            &c,
            1e-4,
        )];
        Ok(self.checked(
            checks,
            json!({"model": "tiny CLIP (32 px), evaluation model without autograd"}),
        ))
    }

    fn checked(&self, checks: Vec<Value>, extra: Value) -> Value {
        let ok = checks.iter().all(|c| c["ok"].as_bool() == Some(true));
        let mut v = json!({"device": self.device_name(), "ok": ok, "checks": checks});
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }

    // ---- speed -------------------------------------------------------------------------

    fn speed_train(&self, batch: usize, bf16: bool) -> Result<Value> {
        let mut cfg = TrainConfig::paper();
        cfg.method = Method::CxrCml;
        cfg.optim.grad_clip = Some(1.0);
        let batch = if self.dry_run {
            cfg.model.preset = ModelPreset::Tiny;
            cfg.model.image_size = 32;
            if batch > 32 {
                8
            } else {
                4
            }
        } else {
            batch
        };
        if bf16 {
            // bf16 mixed precision is a config setting (`loop.precision`); a build without it
            // records the step as not available.
            if let Err(e) = cfg.set("loop.precision=\"bf16\"") {
                return Ok(
                    json!({"device": self.device_name(), "status": "not-available",
                    "note": format!("this build's config does not accept loop.precision = \"bf16\": {e}")}),
                );
            }
        }
        let clip = crate::model::clip_config(&cfg);
        let (vars, model) = crate::model::build_model(&cfg, &self.device)?;
        let params = trainable_vars(&cfg, &vars);
        let mut opt = build_optimizer(&cfg, &vars)?;
        let mut objective = Objective::new(&cfg, None)?;
        let (pixels, ids) = inputs(&clip, batch, SEED)?;
        let (pixels, ids) = (
            pixels.to_device(&self.device)?,
            ids.to_device(&self.device)?,
        );
        let (warmup, timed) = if self.dry_run { (1, 2) } else { (2, 5) };
        let mut one = || -> Result<f64> {
            let mut out = objective.loss_and_grads(&model, &pixels, &ids, &params)?;
            apply(&cfg, opt.as_mut(), &mut out.grads, &params)?;
            // The logged scalar: the one host round trip of a step (it also waits for the GPU).
            Ok(out.total.to_dtype(DType::F64)?.to_scalar::<f64>()?)
        };
        for _ in 0..warmup {
            one()?;
        }
        let start = Instant::now();
        let mut last = 0.0;
        for _ in 0..timed {
            last = one()?;
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(json!({
            "device": self.device_name(),
            "model": if self.dry_run { "tiny (dry run)" } else { "vit-b-32" },
            "precision": if bf16 { "bf16" } else { "f32" },
            "mixture_device": cfg.mixture.device,
            "batch": batch, "warmup_steps": warmup, "timed_steps": timed,
            "seconds_per_step": secs / timed as f64,
            "images_per_s": (batch * timed) as f64 / secs,
            "last_loss": last,
            "step": "forward (image + text), pseudo-labels (mixture fit on detached embeddings), CLIP + triplet loss, backward, gradient clipping, AdamW",
        }))
    }

    fn speed_embed(&self) -> Result<Value> {
        let (clip, batch, reps) = if self.dry_run {
            (ClipConfig::tiny(32), 16, 2)
        } else {
            (ClipConfig::vit_b_32(), 256, 5)
        };
        let (vars, _) = seeded_model(&clip, &Device::Cpu)?;
        let model = eval_model(&vars, &clip, &self.device)?;
        let (pixels, _) = inputs(&clip, batch, SEED)?;
        let pixels = pixels.to_device(&self.device)?;
        let embed =
            || -> Result<Tensor> { Ok(cxr_losses::l2_normalise(&model.encode_image(&pixels)?)?) };
        host(&embed()?)?;
        let start = Instant::now();
        for _ in 0..reps {
            // Embeddings come back to the host, as evaluation needs them there.
            host(&embed()?)?;
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(json!({
            "device": self.device_name(),
            "model": if self.dry_run { "tiny (dry run)" } else { "vit-b-32" },
            "batch": batch, "batches": reps,
            "images_per_s": (batch * reps) as f64 / secs,
        }))
    }

    fn speed_mixture(&self, student: bool, cov: CovarianceType) -> Result<Value> {
        let (n, k, d) = if self.dry_run {
            (2000, 4, 16)
        } else {
            (50_000, 40, 512)
        };
        let max_iter = if cov == CovarianceType::Full { 3 } else { 10 };
        let x = blobs(n, k, d, SEED);
        let start = Instant::now();
        let (iters, lb) = if student {
            // The GMM that initialises the Student-t EM, then the Student-t EM (timed apart).
            let gmm = GaussianMixture::params(k)
                .covariance_type(cov)
                .seed(SEED)
                .tol(0.0)
                .max_iter(max_iter)
                .device(self.mixture_device)
                .fit(x.view())?;
            let t0 = Instant::now();
            let st = StudentMixture::params(k)
                .covariance_type(cov)
                .seed(SEED)
                .tol(0.0)
                .max_iter(max_iter)
                .device(self.mixture_device)
                .fit_from(&gmm, x.view())?;
            let secs = t0.elapsed().as_secs_f64();
            return Ok(json!({
                "device": self.device_name(), "model": "student-t", "covariance": cov,
                "n": n, "k": k, "d": d, "iterations": st.n_iter(),
                "seconds": secs, "seconds_per_iteration": secs / st.n_iter().max(1) as f64,
                "gmm_init_seconds": start.elapsed().as_secs_f64() - secs,
                "lower_bound": st.lower_bound(),
            }));
        } else {
            let g = GaussianMixture::params(k)
                .covariance_type(cov)
                .seed(SEED)
                .tol(0.0)
                .max_iter(max_iter)
                .device(self.mixture_device)
                .fit(x.view())?;
            (g.n_iter(), g.lower_bound())
        };
        let secs = start.elapsed().as_secs_f64();
        Ok(json!({
            "device": self.device_name(), "model": "gmm", "covariance": cov,
            "n": n, "k": k, "d": d, "iterations": iters,
            "seconds": secs, "seconds_per_iteration": secs / iters.max(1) as f64,
            "lower_bound": lb,
            "note": "seconds include the k-means initialisation; tol = 0 so every fit runs max_iter iterations",
        }))
    }
}

// ---- helpers -----------------------------------------------------------------------------

/// A model with seeded initial weights on `device`.
fn seeded_model(cfg: &ClipConfig, device: &Device) -> Result<(VarMap, ClipModel)> {
    let varmap = VarMap::new();
    let vb = crate::init::SeededVarMap::builder(&varmap, SEED, DType::F32, device);
    let model = ClipModel::new(vb, cfg)?;
    Ok((varmap, model))
}

/// The same weights as trainable variables on `device`.
fn copy_model(vars: &VarMap, cfg: &ClipConfig, device: &Device) -> Result<(VarMap, ClipModel)> {
    let out = VarMap::new();
    {
        let mut data = out.data().lock().expect("varmap lock");
        for (name, var) in named_vars(vars) {
            // A deep copy: on the same device `to_device` would share the storage, and a
            // step on one model would move the other's weights too.
            let t = var.as_tensor().detach().to_device(device)?.copy()?;
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    let model = ClipModel::new(VarBuilder::from_varmap(&out, DType::F32, device), cfg)?;
    Ok((out, model))
}

/// The same weights on `device` as plain (detached) tensors: an evaluation model whose
/// forward records no autograd graph.
fn eval_model(vars: &VarMap, cfg: &ClipConfig, device: &Device) -> Result<ClipModel> {
    let tensors = named_vars(vars)
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().detach().to_device(device)?)))
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    Ok(ClipModel::new(
        VarBuilder::from_tensors(tensors, DType::F32, device),
        cfg,
    )?)
}

/// Seeded normalised pixels `[b, 3, s, s]` and token ids `[b, context]` (an end-of-text token
/// at a random position, zeros after it) on the CPU.
fn inputs(cfg: &ClipConfig, b: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = cfg.vision_config.image_size;
    let pixels = Tensor::from_vec(normal(&mut rng, b * 3 * s * s), (b, 3, s, s), &Device::Cpu)?;
    let ctx = cfg.text_config.max_position_embeddings;
    let mut ids = vec![0u32; b * ctx];
    for row in ids.chunks_mut(ctx) {
        let len = rng.gen_range(3..ctx.min(20));
        row[0] = EOT - 1;
        for t in row.iter_mut().take(len).skip(1) {
            *t = rng.gen_range(1..40_000);
        }
        row[len] = EOT;
    }
    Ok((pixels, Tensor::from_vec(ids, (b, ctx), &Device::Cpu)?))
}

fn normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// `n` points in `d` dimensions around `k` seeded centres.
fn blobs(n: usize, k: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f64> = (0..k * d)
        .map(|_| 4.0 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    Array2::from_shape_fn((n, d), |(i, j)| {
        centres[(i % k) * d + j] + rng.sample::<f64, _>(StandardNormal)
    })
}

/// A 2-D f32 host copy of a tensor.
fn host(t: &Tensor) -> Result<Array2<f32>> {
    let t = t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let (r, c) = t.dims2()?;
    Ok(Array2::from_shape_vec((r, c), t.flatten_all()?.to_vec1()?).expect("shape"))
}

/// Errors of `x` against the reference `reference` (any shape, same number of elements).
fn compare(what: &str, x: &Tensor, reference: &Tensor, bound: f64) -> Result<Value> {
    let flat = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(t.to_dtype(DType::F64)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1()?)
    };
    let (a, b) = (flat(x)?, flat(reference)?);
    let a = Array2::from_shape_vec((1, a.len()), a).expect("shape");
    let b = Array2::from_shape_vec((1, b.len()), b).expect("shape");
    let mut v = compare_arr(what, &a, &b, bound);
    v["shape"] = json!(reference.dims());
    Ok(v)
}

fn compare_arr(what: &str, x: &Array2<f64>, reference: &Array2<f64>, bound: f64) -> Value {
    if x.dim() != reference.dim() {
        return json!({"what": what, "ok": false,
            "note": format!("shape {:?} against the reference's {:?}", x.dim(), reference.dim())});
    }
    let mut max_abs = 0.0f64;
    let mut scale = 0.0f64;
    let mut finite = true;
    for (a, b) in x.iter().zip(reference) {
        finite &= a.is_finite() == b.is_finite();
        if a.is_finite() && b.is_finite() {
            max_abs = max_abs.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    let max_rel = if scale > 0.0 {
        max_abs / scale
    } else {
        max_abs
    };
    json!({"what": what, "max_abs": max_abs, "max_rel": max_rel, "bound": bound,
        "ok": finite && max_rel <= bound})
}

fn equal(what: &str, x: usize, reference: usize) -> Value {
    json!({"what": what, "value": x, "reference": reference, "ok": x == reference})
}
