//! The CLIP model: a ViT image tower and a causal text transformer with linear projections
//! into a shared space and a learnable log temperature.
//!
//! Follows transformers' `modeling_clip.py` (parameter names, pre-LayerNorm blocks, class-token
//! and end-of-text pooling) and candle-transformers' `models/clip/`, rewritten so that every
//! parameter is a trained variable and every op has a backward pass.
//! Reference: Radford et al. 2021, <https://github.com/openai/CLIP>.

use candle_core::backprop::GradStore;
use candle_core::{DType, IndexOp, Module, Tensor, Var, D};
use candle_nn::{Init, VarBuilder};

use crate::config::{ClipConfig, ClipTextConfig, ClipVisionConfig, LEGACY_EOS_ID};
use crate::nn::{causal_mask, normal, softmax_last_dim, LayerNorm, Linear};
use crate::{Error, Result};

/// Standard deviation transformers uses for embeddings (`initializer_range`).
const INIT_RANGE: f64 = 0.02;

/// Width, heads, MLP size and depth of one transformer tower.
#[derive(Debug, Clone, Copy)]
struct TowerDims {
    hidden: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
    eps: f64,
    act: crate::config::Activation,
}

impl From<&ClipVisionConfig> for TowerDims {
    fn from(c: &ClipVisionConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            act: c.hidden_act,
        }
    }
}

impl From<&ClipTextConfig> for TowerDims {
    fn from(c: &ClipTextConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            act: c.hidden_act,
        }
    }
}

/// Multi-head self-attention with separate q/k/v projections (`self_attn.{q,k,v,out}_proj`).
#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn new(vb: VarBuilder<'_>, d: &TowerDims) -> candle_core::Result<Self> {
        let h = d.hidden;
        // transformers' CLIP init: in-projections scaled down with depth.
        let in_std = (h as f64).powf(-0.5) * ((2 * d.layers) as f64).powf(-0.5);
        let out_std = (h as f64).powf(-0.5);
        let head_dim = h / d.heads;
        Ok(Self {
            q_proj: Linear::new(h, h, true, in_std, vb.pp("q_proj"))?,
            k_proj: Linear::new(h, h, true, in_std, vb.pp("k_proj"))?,
            v_proj: Linear::new(h, h, true, in_std, vb.pp("v_proj"))?,
            out_proj: Linear::new(h, h, true, out_std, vb.pp("out_proj"))?,
            heads: d.heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[b, t, hidden]` -> `[b, heads, t, head_dim]`.
    fn split_heads(&self, xs: &Tensor, b: usize, t: usize) -> candle_core::Result<Tensor> {
        xs.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// `xs` is the LayerNorm output in the master dtype, and so is the output. The
    /// scores are cast back to the master dtype (the mask's) for the softmax, whose
    /// probabilities return to `compute` for the product with the values.
    fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        compute: DType,
    ) -> candle_core::Result<Tensor> {
        let (b, t, hidden) = xs.dims3()?;
        let master = xs.dtype();
        // One cast shared by the three projections.
        let xs = &xs.to_dtype(compute)?;
        let q = self.q_proj.forward_in(xs, compute, compute)?;
        let q = self.split_heads(&(q * self.scale)?, b, t)?;
        let k = self.split_heads(&self.k_proj.forward_in(xs, compute, compute)?, b, t)?;
        let v = self.split_heads(&self.v_proj.forward_in(xs, compute, compute)?, b, t)?;
        let mut scores = q.matmul(&k.t()?)?.to_dtype(master)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = softmax_last_dim(&scores)?.to_dtype(compute)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, hidden))?;
        self.out_proj.forward_in(&out, compute, master)
    }
}

/// The feed-forward block (`mlp.fc1`, `mlp.fc2`).
#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    act: crate::config::Activation,
}

impl Mlp {
    fn new(vb: VarBuilder<'_>, d: &TowerDims) -> candle_core::Result<Self> {
        let fc_std = ((2 * d.hidden) as f64).powf(-0.5);
        let in_std = (d.hidden as f64).powf(-0.5) * ((2 * d.layers) as f64).powf(-0.5);
        Ok(Self {
            fc1: Linear::new(d.hidden, d.intermediate, true, fc_std, vb.pp("fc1"))?,
            fc2: Linear::new(d.intermediate, d.hidden, true, in_std, vb.pp("fc2"))?,
            act: d.act,
        })
    }
}

impl Mlp {
    /// `fc2(act(fc1(xs)))`: matmuls, the hidden layer and the activation in `compute`, the
    /// output in the dtype of `xs` (the master dtype).
    fn forward(&self, xs: &Tensor, compute: DType) -> candle_core::Result<Tensor> {
        let hidden = self
            .act
            .forward(&self.fc1.forward_in(xs, compute, compute)?)?;
        self.fc2.forward_in(&hidden, compute, xs.dtype())
    }
}

/// One pre-LayerNorm transformer block.
#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: LayerNorm,
    mlp: Mlp,
    layer_norm2: LayerNorm,
}

impl EncoderLayer {
    fn new(vb: VarBuilder<'_>, d: &TowerDims) -> candle_core::Result<Self> {
        Ok(Self {
            self_attn: Attention::new(vb.pp("self_attn"), d)?,
            layer_norm1: LayerNorm::new(d.hidden, d.eps, vb.pp("layer_norm1"))?,
            mlp: Mlp::new(vb.pp("mlp"), d)?,
            layer_norm2: LayerNorm::new(d.hidden, d.eps, vb.pp("layer_norm2"))?,
        })
    }

    /// The residual stream `xs` stays in its (master) dtype; each branch runs in `compute`
    /// and returns in the master dtype before it is added.
    fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        compute: DType,
    ) -> candle_core::Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask, compute)?;
        let xs = (xs + h)?;
        let h = self.mlp.forward(&self.layer_norm2.forward(&xs)?, compute)?;
        xs + h
    }
}

/// A stack of blocks (`encoder.layers.N`).
#[derive(Debug, Clone)]
struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn new(vb: VarBuilder<'_>, d: &TowerDims) -> candle_core::Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..d.layers)
            .map(|i| EncoderLayer::new(vb.pp(i), d))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        compute: DType,
    ) -> candle_core::Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, mask, compute)?;
        }
        Ok(xs)
    }
}

/// The ViT image tower (`vision_model.*`), pooled at the class token.
#[derive(Debug, Clone)]
struct VisionTransformer {
    /// `embeddings.patch_embedding.weight`, the checkpoint's conv kernel `[hidden, c, p, p]`.
    patch_embedding: Tensor,
    /// `embeddings.class_embedding` `[hidden]`.
    class_embedding: Tensor,
    /// `embeddings.position_embedding.weight` `[patches + 1, hidden]`.
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    cfg: ClipVisionConfig,
}

impl VisionTransformer {
    fn new(vb: VarBuilder<'_>, c: &ClipVisionConfig) -> candle_core::Result<Self> {
        let d = TowerDims::from(c);
        let h = c.hidden_size;
        let emb = vb.pp("embeddings");
        let patch_embedding = emb.get_with_hints(
            (h, c.num_channels, c.patch_size, c.patch_size),
            "patch_embedding.weight",
            normal(INIT_RANGE),
        )?;
        let class_embedding =
            emb.get_with_hints(h, "class_embedding", normal((h as f64).powf(-0.5)))?;
        let position_embedding = emb.get_with_hints(
            (c.num_positions(), h),
            "position_embedding.weight",
            normal(INIT_RANGE),
        )?;
        Ok(Self {
            patch_embedding,
            class_embedding,
            position_embedding,
            // The typo is transformers' own parameter name.
            pre_layrnorm: LayerNorm::new(h, c.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(vb.pp("encoder"), &d)?,
            post_layernorm: LayerNorm::new(h, c.layer_norm_eps, vb.pp("post_layernorm"))?,
            cfg: c.clone(),
        })
    }

    /// Non-overlapping patches as one matmul: `[b, c, g*p, g*p]` -> `[b, g*g, hidden]`.
    /// Identical to the stride-p convolution of the checkpoint, several times faster on CPU.
    /// The matmul runs in `compute`; the patch embeddings return in the pixels' dtype.
    fn embed_patches(&self, pixels: &Tensor, compute: DType) -> candle_core::Result<Tensor> {
        let (b, c, _, _) = pixels.dims4()?;
        let p = self.cfg.patch_size;
        let g = self.cfg.grid_size();
        let h = self.cfg.hidden_size;
        let patches = pixels
            .reshape((b, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * g * g, c * p * p))?;
        let kernel = self
            .patch_embedding
            .reshape((h, c * p * p))?
            .to_dtype(compute)?;
        patches
            .to_dtype(compute)?
            .matmul(&kernel.t()?)?
            .reshape((b, g * g, h))?
            .to_dtype(pixels.dtype())
    }

    /// The embedding stage: class token and patch embeddings plus positions, through the
    /// pre-LayerNorm: the encoder's input `[b, 1 + patches, hidden]` in the pixels' (master)
    /// dtype.
    fn embed(&self, pixels: &Tensor, compute: DType) -> candle_core::Result<Tensor> {
        let b = pixels.dim(0)?;
        let h = self.cfg.hidden_size;
        let patches = self.embed_patches(pixels, compute)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, h))?
            .broadcast_as((b, 1, h))?;
        let xs = Tensor::cat(&[&cls, &patches], 1)?;
        let xs = cxr_ops::add_bias(&xs, &self.position_embedding)?;
        self.pre_layrnorm.forward(&xs)
    }

    /// The post-LayerNorm class token `[b, hidden]` of the encoder's output.
    fn pool(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.post_layernorm.forward(&xs.i((.., 0, ..))?)
    }

    /// The post-LayerNorm class token `[b, hidden]`, in the pixels' (master) dtype.
    fn forward(&self, pixels: &Tensor, compute: DType) -> candle_core::Result<Tensor> {
        let xs = self.embed(pixels, compute)?;
        let xs = self.encoder.forward(&xs, None, compute)?;
        self.pool(&xs)
    }
}

/// The causal text tower (`text_model.*`), pooled at the end-of-text token.
#[derive(Debug, Clone)]
struct TextTransformer {
    /// `embeddings.token_embedding.weight` `[vocab, hidden]`.
    token_embedding: Tensor,
    /// `embeddings.position_embedding.weight` `[context, hidden]`.
    position_embedding: Tensor,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    cfg: ClipTextConfig,
}

impl TextTransformer {
    fn new(vb: VarBuilder<'_>, c: &ClipTextConfig) -> candle_core::Result<Self> {
        let d = TowerDims::from(c);
        let h = c.hidden_size;
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: emb.get_with_hints(
                (c.vocab_size, h),
                "token_embedding.weight",
                normal(INIT_RANGE),
            )?,
            position_embedding: emb.get_with_hints(
                (c.max_position_embeddings, h),
                "position_embedding.weight",
                normal(INIT_RANGE),
            )?,
            encoder: Encoder::new(vb.pp("encoder"), &d)?,
            final_layer_norm: LayerNorm::new(h, c.layer_norm_eps, vb.pp("final_layer_norm"))?,
            cfg: c.clone(),
        })
    }

    /// Position of the token that pools each row: the first end-of-text id, or with the legacy
    /// `eos_token_id = 2` the (first) largest id, as transformers does.
    fn pool_positions(&self, ids: &[Vec<u32>]) -> Result<Vec<usize>> {
        ids.iter()
            .enumerate()
            .map(|(row, ids)| {
                if self.cfg.eos_token_id == LEGACY_EOS_ID {
                    let max = ids.iter().copied().max().unwrap_or(0);
                    Ok(ids.iter().position(|&id| id == max).unwrap_or(0))
                } else {
                    ids.iter()
                        .position(|&id| id == self.cfg.eos_token_id)
                        .ok_or_else(|| {
                            Error::BadInput(format!(
                                "text {row} has no end-of-text token {}: tokenize with the CLIP \
                                 tokenizer, whose truncation keeps the end token",
                                self.cfg.eos_token_id
                            ))
                        })
                }
            })
            .collect()
    }

    /// The final-LayerNorm end-of-text tokens `[b, hidden]`, in the master dtype (the
    /// embeddings' gather and the residual stream stay in it; the blocks run in `compute`).
    fn forward(&self, input_ids: &Tensor, compute: DType) -> Result<Tensor> {
        let input = self.prepare(input_ids)?;
        let xs = self.embed(&input)?;
        let xs = self.encoder.forward(&xs, Some(&input.mask), compute)?;
        Ok(self.pool(&xs, &input)?)
    }

    /// Checked token ids, truncated after the last pooled position, with the pooling
    /// positions and the causal mask (in the parameters' dtype).
    fn prepare(&self, input_ids: &Tensor) -> Result<TextInput> {
        let (_, len) = input_ids.dims2()?;
        let c = &self.cfg;
        if len == 0 || len > c.max_position_embeddings {
            return Err(Error::BadInput(format!(
                "text length {len} must be in 1..={}",
                c.max_position_embeddings
            )));
        }
        let ids = input_ids.to_dtype(DType::U32)?;
        let host = ids.to_vec2::<u32>()?;
        if let Some(&bad) = host
            .iter()
            .flatten()
            .find(|&&id| id as usize >= c.vocab_size)
        {
            return Err(Error::BadInput(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                c.vocab_size
            )));
        }
        let positions = self.pool_positions(&host)?;
        // Under the causal mask no token attends to a later one, so everything after the last
        // pooled position is dead weight: drop it (exactly the same result, much less work for
        // short texts padded to 77).
        let len = positions.iter().max().map_or(len, |&p| p + 1);
        let ids = ids.narrow(1, 0, len)?.contiguous()?;
        let mask = causal_mask(
            len,
            self.token_embedding.dtype(),
            self.token_embedding.device(),
        )?;
        Ok(TextInput {
            ids,
            positions,
            mask,
        })
    }

    /// The embedding stage: token plus position embeddings, the encoder's input
    /// `[b, len, hidden]` in the master dtype.
    fn embed(&self, input: &TextInput) -> candle_core::Result<Tensor> {
        let (b, len) = input.ids.dims2()?;
        let tokens = self
            .token_embedding
            .index_select(&input.ids.flatten_all()?, 0)?
            .reshape((b, len, self.cfg.hidden_size))?;
        cxr_ops::add_bias(&tokens, &self.position_embedding.narrow(0, 0, len)?)
    }

    /// The final-LayerNorm end-of-text tokens `[b, hidden]` of the encoder's output.
    fn pool(&self, xs: &Tensor, input: &TextInput) -> candle_core::Result<Tensor> {
        let (b, len) = input.ids.dims2()?;
        let h = self.cfg.hidden_size;
        let xs = self.final_layer_norm.forward(xs)?;
        let flat_index: Vec<u32> = input
            .positions
            .iter()
            .enumerate()
            .map(|(row, &pos)| (row * len + pos) as u32)
            .collect();
        let flat_index = Tensor::from_vec(flat_index, b, xs.device())?;
        xs.reshape((b * len, h))?.index_select(&flat_index, 0)
    }
}

/// The text tower's input after [`TextTransformer::prepare`].
#[derive(Debug, Clone)]
struct TextInput {
    /// `[b, len]` u32 ids, truncated after the last pooled position.
    ids: Tensor,
    /// Per row, the position of the token that pools it.
    positions: Vec<usize>,
    /// The additive causal mask `[len, len]` in the parameters' dtype.
    mask: Tensor,
}

/// CLIP with transformers' `CLIPModel` parameter names: `vision_model.*`, `text_model.*`,
/// `visual_projection.weight`, `text_projection.weight`, `logit_scale`.
///
/// Every parameter comes from the [`VarBuilder`], so with `VarBuilder::from_varmap` all of them
/// (class embedding, position embeddings and logit scale included) are trainable `Var`s.
#[derive(Debug, Clone)]
pub struct ClipModel {
    vision_model: VisionTransformer,
    text_model: TextTransformer,
    visual_projection: Linear,
    text_projection: Linear,
    logit_scale: Tensor,
    config: ClipConfig,
    /// The dtype of matmuls and block activations (see [`ClipModel::with_compute_dtype`]).
    compute: DType,
}

impl ClipModel {
    /// Builds the model, reading (or, for a `VarMap`-backed builder, creating) every parameter.
    pub fn new(vb: VarBuilder<'_>, cfg: &ClipConfig) -> Result<Self> {
        cfg.validate()?;
        let vision_model = VisionTransformer::new(vb.pp("vision_model"), &cfg.vision_config)?;
        let text_model = TextTransformer::new(vb.pp("text_model"), &cfg.text_config)?;
        let vh = cfg.vision_config.hidden_size;
        let th = cfg.text_config.hidden_size;
        let visual_projection = Linear::new(
            vh,
            cfg.projection_dim,
            false,
            (vh as f64).powf(-0.5),
            vb.pp("visual_projection"),
        )?;
        let text_projection = Linear::new(
            th,
            cfg.projection_dim,
            false,
            (th as f64).powf(-0.5),
            vb.pp("text_projection"),
        )?;
        let logit_scale = vb.get_with_hints(
            (),
            "logit_scale",
            Init::Const(cfg.logit_scale_init_value as f64),
        )?;
        let compute = logit_scale.dtype();
        Ok(Self {
            vision_model,
            text_model,
            visual_projection,
            text_projection,
            logit_scale,
            config: cfg.clone(),
            compute,
        })
    }

    /// The same model (same parameters) computing in mixed precision: every matmul (its
    /// inputs, the weights cast at use, its output) and the activations between matmuls
    /// (q / k / v, attention probabilities, the MLP's hidden layer and activation) in
    /// `compute`, e.g. `DType::BF16`; LayerNorm, softmax, the residual stream, the embedding
    /// sums and the returned embeddings stay in the parameters' (master) dtype, as
    /// `torch.autocast` does. The casts are differentiable, so backward gives the master
    /// parameters their gradients in their own dtype (what an f32 optimiser updates).
    ///
    /// With `compute` equal to the parameters' dtype (the default) every cast is a no-op and
    /// the forward is exactly the single-precision one. A `compute` dtype must be a floating
    /// point one no wider than the parameters'.
    pub fn with_compute_dtype(mut self, compute: DType) -> Result<Self> {
        let master = self.logit_scale.dtype();
        if !compute.is_float() || compute.size_in_bytes() > master.size_in_bytes() {
            return Err(Error::BadInput(format!(
                "compute dtype {compute:?} must be a floating-point dtype no wider than the \
                 parameters' {master:?} (e.g. bf16 over f32 parameters)"
            )));
        }
        self.compute = compute;
        Ok(self)
    }

    /// The dtype of matmuls and block activations (the parameters' dtype unless
    /// [`ClipModel::with_compute_dtype`] set another).
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// Image embeddings `[b, projection_dim]`, projected but not normalised, in the
    /// parameters' dtype (also under mixed precision).
    ///
    /// `pixel_values` is `[b, channels, image_size, image_size]`, already normalised; it is
    /// cast to the model's dtype.
    pub fn encode_image(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let pixels = self.checked_pixels(pixel_values)?;
        let master = self.logit_scale.dtype();
        let pooled = self.vision_model.forward(&pixels, self.compute)?;
        Ok(self
            .visual_projection
            .forward_in(&pooled, self.compute, master)?)
    }

    /// Text embeddings `[b, projection_dim]` for token ids `[b, len]` (u32 or i64, `len` at
    /// most the context length), taken at each row's first end-of-text token, projected but
    /// not normalised, in the parameters' dtype. A row without end-of-text token is an error.
    pub fn encode_text(&self, input_ids: &Tensor) -> Result<Tensor> {
        let pooled = self.text_model.forward(input_ids, self.compute)?;
        Ok(self
            .text_projection
            .forward_in(&pooled, self.compute, self.logit_scale.dtype())?)
    }

    /// `pixel_values` checked against the vision config and cast to the parameters' dtype.
    fn checked_pixels(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let c = &self.config.vision_config;
        let dims = pixel_values.dims();
        if dims.len() != 4
            || dims[1] != c.num_channels
            || dims[2] != c.image_size
            || dims[3] != c.image_size
        {
            return Err(Error::BadInput(format!(
                "pixel_values must be [batch, {}, {}, {}], got {dims:?}",
                c.num_channels, c.image_size, c.image_size
            )));
        }
        Ok(pixel_values.to_dtype(self.logit_scale.dtype())?)
    }

    /// The image tower run for activation checkpointing: the same embeddings as
    /// [`ClipModel::encode_image`] (bit for bit), computed segment by segment (the embedding
    /// stage, each encoder layer, the head: post-LayerNorm, pooling, projection), each
    /// segment's output detached before the next one reads it. The segments that `recompute`
    /// names keep only their input; the others keep their graph (their activations) until
    /// [`Checkpointed::backward`] has passed them. That backward then gives the parameter
    /// gradients for a gradient of the loss with respect to the embeddings, one segment at a
    /// time from the head down, recomputing the former and freeing each one's activations as
    /// soon as it is done. With [`Recompute::All`] the peak is one segment's activations plus
    /// the boundaries, for one more forward pass of compute; with [`Recompute::Lowest`]`(0)`
    /// nothing is recomputed, and memory falls during the backward pass as it does in PyTorch
    /// instead of holding every activation until the end.
    pub fn checkpoint_image(
        &self,
        pixel_values: &Tensor,
        recompute: Recompute,
    ) -> Result<Checkpointed<'_>> {
        let pixels = self.checked_pixels(pixel_values)?;
        Checkpointed::forward(self, TowerInput::Image(pixels), recompute)
    }

    /// The text tower run for activation checkpointing, as [`ClipModel::checkpoint_image`]:
    /// the embeddings of [`ClipModel::encode_text`] bit for bit (same truncation after the
    /// last end-of-text position, same causal mask).
    pub fn checkpoint_text(
        &self,
        input_ids: &Tensor,
        recompute: Recompute,
    ) -> Result<Checkpointed<'_>> {
        let input = self.text_model.prepare(input_ids)?;
        Checkpointed::forward(self, TowerInput::Text(input), recompute)
    }

    /// Segments of a tower: the embedding stage, one per encoder layer, the head.
    fn segments(&self, input: &TowerInput) -> usize {
        let layers = match input {
            TowerInput::Image(_) => self.vision_model.encoder.layers.len(),
            TowerInput::Text(_) => self.text_model.encoder.layers.len(),
        };
        layers + 2
    }

    /// Segment `index` of a tower on `xs`, the previous segment's output (ignored by the
    /// embedding stage, segment 0, which reads the tower's input). The ops are those of
    /// `encode_image` / `encode_text`, in the same dtypes.
    fn segment(&self, input: &TowerInput, index: usize, xs: &Tensor) -> Result<Tensor> {
        let master = self.logit_scale.dtype();
        let last = self.segments(input) - 1;
        Ok(match input {
            TowerInput::Image(pixels) => match index {
                0 => self.vision_model.embed(pixels, self.compute)?,
                i if i == last => self.visual_projection.forward_in(
                    &self.vision_model.pool(xs)?,
                    self.compute,
                    master,
                )?,
                i => self.vision_model.encoder.layers[i - 1].forward(xs, None, self.compute)?,
            },
            TowerInput::Text(text) => match index {
                0 => self.text_model.embed(text)?,
                i if i == last => self.text_projection.forward_in(
                    &self.text_model.pool(xs, text)?,
                    self.compute,
                    master,
                )?,
                i => self.text_model.encoder.layers[i - 1].forward(
                    xs,
                    Some(&text.mask),
                    self.compute,
                )?,
            },
        })
    }

    /// `(logits_per_image [n_img, n_txt], logits_per_text [n_txt, n_img])` as transformers'
    /// `CLIPModel.forward`: cosine similarities times `exp(logit_scale)` (unclamped).
    pub fn logits(&self, pixel_values: &Tensor, input_ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let img = l2_normalize(&self.encode_image(pixel_values)?)?;
        let txt = l2_normalize(&self.encode_text(input_ids)?)?;
        let per_text = txt
            .matmul(&img.t()?)?
            .broadcast_mul(&self.logit_scale.exp()?)?;
        let per_image = per_text.t()?;
        Ok((per_image, per_text))
    }

    /// The learnable log temperature (a scalar); callers take `exp()` and clamp it.
    pub fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }
}

/// What a tower's embedding stage reads.
#[derive(Debug, Clone)]
enum TowerInput {
    /// Checked pixels in the parameters' dtype.
    Image(Tensor),
    Text(TextInput),
}

/// Which segments of a tower [`ClipModel::checkpoint_image`] / `checkpoint_text` recompute
/// during the backward pass instead of keeping their activations from the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recompute {
    /// Every segment: only the segment boundaries are kept.
    All,
    /// The embedding stage and the lowest `n` encoder layers (all of them when `n` is the
    /// depth or more); the layers above and the head keep their activations. The lowest
    /// segments go first because they are the last the backward pass reaches: the activations
    /// kept above them are freed before they are recomputed. `Lowest(0)` recomputes nothing.
    Lowest(usize),
}

impl Recompute {
    /// How many segments, from the embedding stage up, are recomputed in a tower of
    /// `segments` segments (its layers plus the embedding stage and the head).
    fn segments(self, segments: usize) -> usize {
        match self {
            Recompute::All => segments,
            Recompute::Lowest(0) => 0,
            Recompute::Lowest(n) => n.min(segments - 2) + 1,
        }
    }
}

/// One tower's forward pass kept at its segment boundaries, for activation checkpointing
/// ([`ClipModel::checkpoint_image`], [`ClipModel::checkpoint_text`]).
#[derive(Debug)]
pub struct Checkpointed<'m> {
    model: &'m ClipModel,
    input: TowerInput,
    /// `inputs[i]` is the detached input of segment `i + 1`: the embedding stage's output,
    /// then each encoder layer's. For a kept segment with a trainable segment below it, a
    /// variable, so that its graph gives the input's gradient.
    inputs: Vec<Tensor>,
    /// Per segment, its output with its graph when the segment is kept (not recomputed).
    kept: Vec<Option<Tensor>>,
    /// Per segment, whether its output depends on a trainable parameter (a `Var`; a frozen
    /// tower's parameters are detached tensors), or, for a kept segment whose input is a
    /// variable, on anything trainable. Backward stops below the first such segment.
    trainable: Vec<bool>,
    embedding: Tensor,
}

impl<'m> Checkpointed<'m> {
    /// Runs the segments in order, keeping each one's output detached (the graph, and so the
    /// activations, of a recomputed segment are dropped as soon as the next segment has its
    /// input; a kept segment's stay in `kept`).
    fn forward(model: &'m ClipModel, input: TowerInput, recompute: Recompute) -> Result<Self> {
        let n = model.segments(&input);
        let recomputed = recompute.segments(n);
        let mut inputs = Vec::with_capacity(n - 1);
        let mut kept = Vec::with_capacity(n);
        let mut trainable: Vec<bool> = Vec::with_capacity(n);
        let mut xs: Option<Tensor> = None;
        for index in 0..n {
            // A kept segment above a trainable one runs on a variable: backward needs the
            // gradient of its input.
            let x = match xs.take() {
                Some(x) if index >= recomputed && trainable.contains(&true) => {
                    Some(Var::from_tensor(&x)?.as_tensor().clone())
                }
                x => x,
            };
            // The embedding stage ignores its argument; any tensor will do.
            let arg = x.as_ref().unwrap_or(model.logit_scale());
            let out = model.segment(&input, index, arg)?;
            trainable.push(out.track_op());
            inputs.extend(x);
            xs = Some(out.detach());
            kept.push((index >= recomputed).then_some(out));
        }
        let embedding = xs.expect("a tower has at least two segments");
        Ok(Self {
            model,
            input,
            inputs,
            kept,
            trainable,
            embedding,
        })
    }

    /// The tower's output `[b, projection_dim]` (detached), equal to `encode_image` /
    /// `encode_text`'s.
    pub fn embedding(&self) -> &Tensor {
        &self.embedding
    }

    /// The gradients of the tower's trainable parameters (`Var`s) for `grad`, the gradient of
    /// the loss with respect to [`Checkpointed::embedding`]: those of `sum(embedding * grad)`,
    /// what `backward()` of that surrogate through `encode_image` / `encode_text` gives.
    ///
    /// Walks the segments from the head down: each segment's graph (kept, or recomputed on
    /// its kept input as a fresh `Var`) is backpropagated from `sum(output * g)`, its
    /// parameters' gradients are added to the result, the input's gradient becomes the next
    /// `g` and the graph is dropped. Segments below the lowest one with a trainable parameter
    /// are skipped (a frozen tower costs nothing).
    pub fn backward(self, grad: &Tensor) -> Result<GradStore> {
        if grad.dims() != self.embedding.dims() {
            return Err(Error::BadInput(format!(
                "the embedding gradient must be {:?} like the embeddings, got {:?}",
                self.embedding.dims(),
                grad.dims()
            )));
        }
        let Self {
            model,
            input,
            mut inputs,
            mut kept,
            trainable,
            embedding,
        } = self;
        let mut total = GradStore::default();
        let Some(lowest) = trainable.iter().position(|&t| t) else {
            return Ok(total);
        };
        let mut g = grad.to_dtype(embedding.dtype())?.detach();
        drop(embedding);
        for index in (lowest..trainable.len()).rev() {
            // The lowest trainable segment needs no gradient for its input.
            let x = if index > 0 { inputs.pop() } else { None };
            let (out, var) = match kept[index].take() {
                Some(out) => (out, x.filter(|_| index > lowest)),
                None => {
                    let var = match &x {
                        Some(x) if index > lowest => Some(Var::from_tensor(x)?.as_tensor().clone()),
                        _ => None,
                    };
                    let arg = var.as_ref().or(x.as_ref()).unwrap_or(model.logit_scale());
                    (model.segment(&input, index, arg)?, var)
                }
            };
            let vars: Vec<Tensor> = out
                .sorted_nodes()
                .into_iter()
                .filter(|t| t.is_variable())
                .cloned()
                .collect();
            let mut part = (out * &g)?.sum_all()?.backward()?;
            if let Some(v) = &var {
                // Detached: a gradient that tracked an op would pull this segment's backward
                // graph into the next one's.
                g = match part.remove(v) {
                    Some(gx) => gx.detach(),
                    None => v.zeros_like()?,
                };
            }
            // The input's gradient is already taken out: what is left are parameters'.
            for p in vars {
                if let Some(gp) = part.remove(&p) {
                    let sum = match total.remove(&p) {
                        Some(t) => (t + gp)?,
                        None => gp,
                    };
                    total.insert(&p, sum);
                }
            }
        }
        Ok(total)
    }
}

/// Norms below this are clamped to it (`torch.nn.functional.normalize`'s default `eps`).
const L2_NORM_EPS: f64 = 1e-12;

/// Rows (the last dimension) divided by their L2 norm, as PyTorch's
/// `F.normalize(x, dim=-1)` (open_clip): `x / max(‖x‖, 1e-12)`, so a zero row stays zero
/// instead of NaN and a row of norm below `1e-12` is scaled by `1e-12` rather than to unit
/// length. Transformers' `CLIPModel` divides by the bare norm; the two agree on every row of
/// norm at least `1e-12`, bit for bit.
///
/// Built from `sqr`, `sum`, `sqrt`, `maximum` and `div` so that it has a backward pass.
/// `cxr_losses::l2_normalise` and `cxr_eval::l2_normalize_rows` (ndarray) compute the same.
pub fn l2_normalize(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norm = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .maximum(L2_NORM_EPS)?;
    xs.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn l2_normalize_clamps_small_norms_as_torch() {
        let x = Tensor::new(
            &[[3.0f32, 4.0], [0.0, 0.0], [3e-13, 4e-13], [-1e-3, 0.0]],
            &Device::Cpu,
        )
        .unwrap();
        let y = l2_normalize(&x).unwrap().to_vec2::<f32>().unwrap();
        let want = [[0.6, 0.8], [0.0, 0.0], [0.3, 0.4], [-1.0, 0.0]];
        for (got, want) in y.iter().flatten().zip(want.iter().flatten()) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
        let batched = Tensor::ones((2, 3, 4), DType::F64, &Device::Cpu).unwrap();
        let y = l2_normalize(&batched).unwrap();
        assert_eq!(y.dims(), [2, 3, 4]);
        assert!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap() == [0.5; 24]);
    }
}
