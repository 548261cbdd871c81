//! Reading and writing CLIP weights: Hugging Face folders (`config.json` + `model.safetensors`
//! or `pytorch_model.bin`), the local hf-hub cache, and OpenAI-layout PyTorch state dicts (what
//! OpenAI's `clip` package and CheXzero save), remapped to Hugging Face names.
//!
//! This is the crate's only I/O, and it never touches the network: a hub id is looked up in
//! the local cache only, as with `HF_HUB_OFFLINE=1`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig};
use crate::{ClipModel, Error, Result};

/// The layout a checkpoint was stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// Hugging Face `CLIPModel` names (safetensors or a pickled `pytorch_model.bin`).
    HuggingFace,
    /// OpenAI CLIP state-dict names (`visual.conv1.weight`, fused `in_proj_weight`, ...).
    OpenAi,
}

/// A configuration and its tensors under Hugging Face `CLIPModel` names, ready to build a
/// [`ClipModel`] from.
#[derive(Debug, Clone)]
pub struct ClipWeights {
    pub config: ClipConfig,
    pub tensors: HashMap<String, Tensor>,
    pub format: CheckpointFormat,
    /// Where the tensors were read from (for messages).
    pub source: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn ckpt_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

impl ClipWeights {
    /// Loads `PATH_OR_HF_ID`: an existing path goes to [`ClipWeights::from_path`]; anything
    /// else is taken as a hub repository id (`owner/name`, optionally `@revision`) and looked
    /// up in the local hf-hub cache.
    pub fn resolve(path_or_id: &str) -> Result<Self> {
        let path = Path::new(path_or_id);
        if path.exists() {
            Self::from_path(path)
        } else {
            Self::from_hf_cache(path_or_id)
        }
    }

    /// Loads a folder (Hugging Face layout), a `.safetensors` file with `config.json` beside it,
    /// or a PyTorch pickle (`.pt`, `.pth`, `.bin`) in OpenAI or Hugging Face layout (a Hugging
    /// Face pickle needs `config.json` beside it).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            return Self::from_hf_dir(path);
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "safetensors" => {
                let config = sibling_config(path)?;
                Self::from_hf_files(&config, path)
            }
            "pt" | "pth" | "bin" | "ckpt" => Self::from_pickle(path),
            _ => Err(ckpt_err(
                path,
                "unknown weight file type: expected a folder with config.json, a .safetensors \
                 file, or a PyTorch .pt/.pth/.bin state dict",
            )),
        }
    }

    /// Loads a Hugging Face model folder: `config.json` plus `model.safetensors` (preferred) or
    /// `pytorch_model.bin`.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = dir.join("config.json");
        let st = dir.join("model.safetensors");
        let bin = dir.join("pytorch_model.bin");
        if st.is_file() {
            Self::from_hf_files(&config, &st)
        } else if bin.is_file() {
            Self::from_pickle(&bin)
        } else {
            Err(ckpt_err(
                dir,
                "folder holds neither model.safetensors nor pytorch_model.bin",
            ))
        }
    }

    fn from_hf_files(config: &Path, safetensors: &Path) -> Result<Self> {
        let config = ClipConfig::from_json_file(config)?;
        let tensors = candle_core::safetensors::load(safetensors, &Device::Cpu)?;
        Ok(Self {
            config,
            tensors,
            format: CheckpointFormat::HuggingFace,
            source: safetensors.to_owned(),
        })
    }

    /// Looks a hub repository up in the local hf-hub cache (`HF_HUB_CACHE`, else
    /// `HF_HOME/hub`, else `~/.cache/huggingface/hub`). Never downloads, whatever
    /// `HF_HUB_OFFLINE` says; a missing repository is an error saying how to fetch it.
    pub fn from_hf_cache(repo_id: &str) -> Result<Self> {
        Self::from_hf_cache_at(&default_hub_cache(), repo_id)
    }

    /// As [`ClipWeights::from_hf_cache`], with an explicit cache folder (the `hub` folder that
    /// holds `models--owner--name`).
    pub fn from_hf_cache_at(cache_dir: &Path, repo_id: &str) -> Result<Self> {
        let (id, revision) = match repo_id.split_once('@') {
            Some((id, rev)) => (id, rev),
            None => (repo_id, "main"),
        };
        let cache = hf_hub::Cache::new(cache_dir.to_owned());
        let repo = cache.repo(hf_hub::Repo::with_revision(
            id.to_owned(),
            hf_hub::RepoType::Model,
            revision.to_owned(),
        ));
        let not_cached = |file: &str| Error::NotCached {
            repo: repo_id.to_owned(),
            cache: cache_dir.to_owned(),
            file: file.to_owned(),
        };
        let config = repo
            .get("config.json")
            .ok_or_else(|| not_cached("config.json"))?;
        if let Some(st) = repo.get("model.safetensors") {
            Self::from_hf_files(&config, &st)
        } else if let Some(bin) = repo.get("pytorch_model.bin") {
            Self::from_pickle(&bin)
        } else {
            Err(not_cached("model.safetensors"))
        }
    }

    /// Reads a PyTorch pickle (zip format, as `torch.save` writes since 1.6) holding a state
    /// dict, directly or under a `state_dict` key, possibly with DataParallel's `module.`
    /// prefix; OpenAI names are remapped, Hugging Face names need `config.json` beside it.
    pub fn from_pickle(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::Io {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let mut raw = candle_core::pickle::read_all_with_key(path, None)
            .map_err(|e| ckpt_err(path, format!("cannot read as a PyTorch zip pickle: {e}")))?;
        if raw.is_empty() {
            raw = candle_core::pickle::read_all_with_key(path, Some("state_dict"))
                .unwrap_or_default();
        }
        if raw.is_empty() {
            return Err(ckpt_err(
                path,
                "no tensors found: expected a state dict saved with torch.save(model.state_dict()) \
                 (TorchScript archives such as OpenAI's original downloads are not supported: \
                 load them in Python and save model.state_dict())",
            ));
        }
        let tensors: HashMap<String, Tensor> = raw
            .into_iter()
            .map(|(k, v)| (k.strip_prefix("module.").map(str::to_owned).unwrap_or(k), v))
            .collect();
        if tensors.contains_key("visual.conv1.weight") {
            let (config, tensors) = remap_openai(path, tensors)?;
            Ok(Self {
                config,
                tensors,
                format: CheckpointFormat::OpenAi,
                source: path.to_owned(),
            })
        } else if tensors.contains_key("vision_model.embeddings.patch_embedding.weight") {
            let config = ClipConfig::from_json_file(sibling_config(path)?)?;
            Ok(Self {
                config,
                tensors,
                format: CheckpointFormat::HuggingFace,
                source: path.to_owned(),
            })
        } else if tensors.keys().any(|k| k.starts_with("visual.layer1.")) {
            Err(ckpt_err(
                path,
                "this is an OpenAI CLIP with a ResNet image tower; only ViT towers are supported",
            ))
        } else {
            Err(ckpt_err(
                path,
                "neither OpenAI (visual.conv1.weight) nor Hugging Face \
                 (vision_model.embeddings.patch_embedding.weight) CLIP keys found",
            ))
        }
    }

    /// A frozen model (plain tensors, no gradient tracking): for embedding and evaluation.
    pub fn model(&self, dtype: DType, device: &Device) -> Result<ClipModel> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), dtype, device);
        ClipModel::new(vb, &self.config).map_err(|e| self.explain(e))
    }

    /// A trainable model whose every parameter is a `Var` of the returned `VarMap`, initialised
    /// from these weights. Every parameter must be present with the right shape; keys the model
    /// does not use (e.g. `position_ids` buffers) are ignored.
    pub fn trainable(&self, dtype: DType, device: &Device) -> Result<(ClipModel, VarMap)> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, device);
        let model = ClipModel::new(vb, &self.config)?;
        {
            let vars = varmap.data().lock().map_err(|_| {
                ckpt_err(
                    &self.source,
                    "variable map lock poisoned by a panicking thread",
                )
            })?;
            let missing: Vec<&str> = vars
                .keys()
                .filter(|k| !self.tensors.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(ckpt_err(
                    &self.source,
                    format!("missing parameters: {}", summarise(&missing)),
                ));
            }
            for (name, var) in vars.iter() {
                let value = &self.tensors[name];
                if value.shape() != var.shape() {
                    return Err(ckpt_err(
                        &self.source,
                        format!(
                            "{name} has shape {:?}, the config needs {:?}",
                            value.dims(),
                            var.dims()
                        ),
                    ));
                }
                var.set(&value.to_device(device)?.to_dtype(dtype)?)?;
            }
        }
        Ok((model, varmap))
    }

    /// Turns candle's "cannot find tensor" / "shape mismatch" into a message naming the file.
    fn explain(&self, err: Error) -> Error {
        match err {
            Error::Candle(e) => ckpt_err(&self.source, format!("does not fit the config: {e}")),
            other => other,
        }
    }
}

fn summarise(names: &[&str]) -> String {
    let shown: Vec<&str> = names.iter().take(8).copied().collect();
    if names.len() > shown.len() {
        format!(
            "{} and {} more",
            shown.join(", "),
            names.len() - shown.len()
        )
    } else {
        shown.join(", ")
    }
}

fn sibling_config(path: &Path) -> Result<PathBuf> {
    let config = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("config.json");
    if config.is_file() {
        Ok(config)
    } else {
        Err(ckpt_err(
            path,
            format!(
                "Hugging Face layout weights need their config.json beside them ({} not found)",
                config.display()
            ),
        ))
    }
}

/// The hub cache folder, resolved as `huggingface_hub` does: `HF_HUB_CACHE`, then
/// `HF_HOME/hub`, then `~/.cache/huggingface/hub`.
pub fn default_hub_cache() -> PathBuf {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => hf_hub::Cache::from_env().path().clone(),
    }
}

/// Number of `prefix{i}.` blocks present.
fn count_blocks(tensors: &HashMap<String, Tensor>, prefix: &str) -> usize {
    tensors
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .collect::<BTreeSet<_>>()
        .len()
}

/// OpenAI state dict -> (config, Hugging Face names), inferring the architecture from shapes
/// as OpenAI's `clip.model.build_model` does (heads = width / 64, quick GELU, end-of-text =
/// the last vocabulary id).
fn remap_openai(
    path: &Path,
    mut sd: HashMap<String, Tensor>,
) -> Result<(ClipConfig, HashMap<String, Tensor>)> {
    let dims = |sd: &HashMap<String, Tensor>, key: &str| -> Result<Vec<usize>> {
        sd.get(key)
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| ckpt_err(path, format!("missing OpenAI key {key}")))
    };
    let conv = dims(&sd, "visual.conv1.weight")?;
    let vis_pos = dims(&sd, "visual.positional_embedding")?;
    let txt_proj = dims(&sd, "text_projection")?;
    let txt_pos = dims(&sd, "positional_embedding")?;
    let tok = dims(&sd, "token_embedding.weight")?;
    let ln_final = dims(&sd, "ln_final.weight")?;
    let (vw, patch) = (conv[0], conv[3]);
    let grid = ((vis_pos[0] - 1) as f64).sqrt().round() as usize;
    if grid * grid + 1 != vis_pos[0] {
        return Err(ckpt_err(
            path,
            "visual.positional_embedding is not a square grid + 1",
        ));
    }
    let tw = ln_final[0];
    let v_layers = count_blocks(&sd, "visual.transformer.resblocks.");
    let t_layers = count_blocks(&sd, "transformer.resblocks.");
    let v_mlp = dims(&sd, "visual.transformer.resblocks.0.mlp.c_fc.weight")?[0];
    let t_mlp = dims(&sd, "transformer.resblocks.0.mlp.c_fc.weight")?[0];
    let heads = |w: usize| (w / 64).max(1);
    let config = ClipConfig {
        vision_config: ClipVisionConfig {
            image_size: grid * patch,
            patch_size: patch,
            num_channels: conv[1],
            hidden_size: vw,
            intermediate_size: v_mlp,
            num_hidden_layers: v_layers,
            num_attention_heads: heads(vw),
            layer_norm_eps: 1e-5,
            hidden_act: Activation::QuickGelu,
        },
        text_config: ClipTextConfig {
            vocab_size: tok[0],
            max_position_embeddings: txt_pos[0],
            hidden_size: tw,
            intermediate_size: t_mlp,
            num_hidden_layers: t_layers,
            num_attention_heads: heads(tw),
            layer_norm_eps: 1e-5,
            hidden_act: Activation::QuickGelu,
            eos_token_id: (tok[0] - 1) as u32,
        },
        projection_dim: txt_proj[1],
        logit_scale_init_value: 2.6592,
    };
    config
        .validate()
        .map_err(|e| ckpt_err(path, format!("inferred config is invalid: {e}")))?;

    let mut out: HashMap<String, Tensor> = HashMap::new();
    let take = |sd: &mut HashMap<String, Tensor>,
                out: &mut HashMap<String, Tensor>,
                from: &str,
                to: String|
     -> Result<()> {
        let t = sd
            .remove(from)
            .ok_or_else(|| ckpt_err(path, format!("missing OpenAI key {from}")))?;
        out.insert(to, t);
        Ok(())
    };
    let v = "vision_model";
    take(
        &mut sd,
        &mut out,
        "visual.class_embedding",
        format!("{v}.embeddings.class_embedding"),
    )?;
    take(
        &mut sd,
        &mut out,
        "visual.positional_embedding",
        format!("{v}.embeddings.position_embedding.weight"),
    )?;
    take(
        &mut sd,
        &mut out,
        "visual.conv1.weight",
        format!("{v}.embeddings.patch_embedding.weight"),
    )?;
    for (oa, hf) in [("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")] {
        for p in ["weight", "bias"] {
            take(
                &mut sd,
                &mut out,
                &format!("visual.{oa}.{p}"),
                format!("{v}.{hf}.{p}"),
            )?;
        }
    }
    let t = "text_model";
    take(
        &mut sd,
        &mut out,
        "token_embedding.weight",
        format!("{t}.embeddings.token_embedding.weight"),
    )?;
    take(
        &mut sd,
        &mut out,
        "positional_embedding",
        format!("{t}.embeddings.position_embedding.weight"),
    )?;
    for p in ["weight", "bias"] {
        take(
            &mut sd,
            &mut out,
            &format!("ln_final.{p}"),
            format!("{t}.final_layer_norm.{p}"),
        )?;
    }
    take(&mut sd, &mut out, "logit_scale", "logit_scale".into())?;
    // OpenAI multiplies `x @ proj` ([width, dim]); transformers stores Linear weights [dim, width].
    for (oa, hf) in [
        ("visual.proj", "visual_projection.weight"),
        ("text_projection", "text_projection.weight"),
    ] {
        let w = sd
            .remove(oa)
            .ok_or_else(|| ckpt_err(path, format!("missing OpenAI key {oa}")))?;
        out.insert(hf.to_owned(), w.t()?.contiguous()?);
    }
    for (oa_prefix, hf_prefix, layers) in [
        ("visual.transformer.resblocks", v, v_layers),
        ("transformer.resblocks", t, t_layers),
    ] {
        for i in 0..layers {
            let o = format!("{oa_prefix}.{i}");
            let h = format!("{hf_prefix}.encoder.layers.{i}");
            // The fused [3w, w] input projection holds q, k, v in that order.
            for p in ["weight", "bias"] {
                let key = format!("{o}.attn.in_proj_{p}");
                let fused = sd
                    .remove(&key)
                    .ok_or_else(|| ckpt_err(path, format!("missing OpenAI key {key}")))?;
                let w = fused.dim(0)? / 3;
                for (j, name) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    out.insert(
                        format!("{h}.self_attn.{name}.{p}"),
                        fused.narrow(0, j * w, w)?.contiguous()?,
                    );
                }
            }
            for (oa, hf) in [
                ("attn.out_proj", "self_attn.out_proj"),
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ] {
                for p in ["weight", "bias"] {
                    take(
                        &mut sd,
                        &mut out,
                        &format!("{o}.{oa}.{p}"),
                        format!("{h}.{hf}.{p}"),
                    )?;
                }
            }
        }
    }
    // Non-tensor metadata some exports carry; anything else means an unknown architecture.
    for meta in ["input_resolution", "context_length", "vocab_size"] {
        sd.remove(meta);
    }
    if !sd.is_empty() {
        let mut left: Vec<&str> = sd.keys().map(String::as_str).collect();
        left.sort_unstable();
        return Err(ckpt_err(
            path,
            format!(
                "unexpected OpenAI keys (not a standard ViT CLIP?): {}",
                summarise(&left)
            ),
        ));
    }
    Ok((config, out))
}

/// Writes the variables as safetensors under their (Hugging Face) names.
pub fn save_safetensors(varmap: &VarMap, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    varmap.save(path)?;
    Ok(())
}

/// Writes a Hugging Face model folder (`config.json` + `model.safetensors`) that
/// [`ClipWeights::from_hf_dir`] and transformers' `CLIPModel.from_pretrained` both read.
pub fn save_pretrained(varmap: &VarMap, config: &ClipConfig, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let json = hf_config_json(config);
    let text = serde_json::to_string_pretty(&json).map_err(|source| Error::ConfigJson {
        path: dir.join("config.json"),
        source,
    })?;
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, text + "\n").map_err(io_err(&cfg_path))?;
    save_safetensors(varmap, dir.join("model.safetensors"))
}

/// Our config plus the keys transformers needs to recognise a `CLIPModel`.
fn hf_config_json(config: &ClipConfig) -> serde_json::Value {
    let mut json = serde_json::to_value(config).unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("architectures".into(), serde_json::json!(["CLIPModel"]));
        obj.insert("model_type".into(), "clip".into());
        for (key, kind) in [
            ("text_config", "clip_text_model"),
            ("vision_config", "clip_vision_model"),
        ] {
            if let Some(sub) = obj.get_mut(key).and_then(|v| v.as_object_mut()) {
                sub.insert("model_type".into(), kind.into());
                sub.insert("projection_dim".into(), config.projection_dim.into());
            }
        }
    }
    json
}
