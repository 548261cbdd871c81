//! Model configuration, deserialisable from a Hugging Face `CLIPModel` `config.json`.
//!
//! Missing fields take the defaults of `transformers.CLIPConfig` (4.x), so that the short
//! configs of some hub repositories load as they do in Python.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The MLP non-linearity, spelled as in `config.json` (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`: what every OpenAI CLIP checkpoint uses.
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// The exact (erf) GELU of `torch.nn.GELU()`.
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(alias = "gelu_new", rename = "gelu_pytorch_tanh")]
    GeluTanh,
}

/// The vision tower (a ViT): `vision_config` in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: Activation,
}

/// The text tower (a causal transformer): `text_config` in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: Activation,
    /// The end-of-text id whose first position pools the text. The value 2 found in old hub
    /// configs (e.g. `openai/clip-vit-base-patch32`) means "pool at the largest id", as
    /// transformers does for backward compatibility; with CLIP's BPE both give the same position.
    pub eos_token_id: u32,
}

/// A whole CLIP model: both towers, the shared embedding width and the initial logit scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipConfig {
    pub vision_config: ClipVisionConfig,
    pub text_config: ClipTextConfig,
    pub projection_dim: usize,
    /// Initial value of the learnable log temperature (`ln(1 / 0.07) = 2.6592`).
    pub logit_scale_init_value: f32,
}

/// The end-of-text token id of CLIP's BPE vocabulary.
pub const CLIP_EOT_ID: u32 = 49407;

/// Legacy `eos_token_id` value that makes transformers pool at `argmax(input_ids)`.
pub(crate) const LEGACY_EOS_ID: u32 = 2;

impl Default for ClipVisionConfig {
    /// The ViT-B/32 vision tower (also the `transformers.CLIPVisionConfig` defaults).
    fn default() -> Self {
        Self {
            image_size: 224,
            patch_size: 32,
            num_channels: 3,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            layer_norm_eps: 1e-5,
            hidden_act: Activation::QuickGelu,
        }
    }
}

impl Default for ClipTextConfig {
    /// The 12-layer, 512-wide text tower of ViT-B/32 and ViT-B/16 (the transformers defaults).
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            max_position_embeddings: 77,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            layer_norm_eps: 1e-5,
            hidden_act: Activation::QuickGelu,
            eos_token_id: CLIP_EOT_ID,
        }
    }
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self::vit_b_32()
    }
}

impl ClipVisionConfig {
    /// Number of patches along one side of the image.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of tokens the encoder sees: one per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        self.grid_size() * self.grid_size() + 1
    }

    fn validate(&self) -> Result<()> {
        check_tower(
            "vision",
            self.hidden_size,
            self.num_attention_heads,
            self.layer_norm_eps,
        )?;
        if self.patch_size == 0 || self.image_size == 0 || self.num_channels == 0 {
            return Err(Error::InvalidConfig(
                "vision image_size, patch_size and num_channels must be positive".into(),
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(Error::InvalidConfig(format!(
                "vision image_size {} is not a multiple of patch_size {}: pick sizes that tile",
                self.image_size, self.patch_size
            )));
        }
        Ok(())
    }
}

impl ClipTextConfig {
    fn validate(&self) -> Result<()> {
        check_tower(
            "text",
            self.hidden_size,
            self.num_attention_heads,
            self.layer_norm_eps,
        )?;
        if self.vocab_size == 0 || self.max_position_embeddings == 0 {
            return Err(Error::InvalidConfig(
                "text vocab_size and max_position_embeddings must be positive".into(),
            ));
        }
        Ok(())
    }
}

fn check_tower(name: &str, hidden: usize, heads: usize, eps: f64) -> Result<()> {
    if hidden == 0 || heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(Error::InvalidConfig(format!(
            "{name} hidden_size {hidden} must be a positive multiple of num_attention_heads {heads}"
        )));
    }
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::InvalidConfig(format!(
            "{name} layer_norm_eps must be positive and finite, got {eps}"
        )));
    }
    Ok(())
}

impl ClipConfig {
    /// OpenAI ViT-B/32: <https://huggingface.co/openai/clip-vit-base-patch32/blob/main/config.json>
    pub fn vit_b_32() -> Self {
        Self {
            vision_config: ClipVisionConfig::default(),
            text_config: ClipTextConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }

    /// OpenAI ViT-B/16: <https://huggingface.co/openai/clip-vit-base-patch16/blob/main/config.json>
    pub fn vit_b_16() -> Self {
        let mut cfg = Self::vit_b_32();
        cfg.vision_config.patch_size = 16;
        cfg
    }

    /// OpenAI ViT-L/14: <https://huggingface.co/openai/clip-vit-large-patch14/blob/main/config.json>
    pub fn vit_l_14() -> Self {
        Self {
            vision_config: ClipVisionConfig {
                patch_size: 14,
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 24,
                num_attention_heads: 16,
                ..ClipVisionConfig::default()
            },
            text_config: ClipTextConfig {
                hidden_size: 768,
                intermediate_size: 3072,
                num_attention_heads: 12,
                ..ClipTextConfig::default()
            },
            projection_dim: 768,
            logit_scale_init_value: 2.6592,
        }
    }

    /// A small model for tests and quick CPU experiments: patch 8, width 64, 2 layers and
    /// 2 heads per tower, the full CLIP vocabulary and context 77 so that real tokenizer output
    /// fits. `image_size` must be a multiple of 8 (checked by [`ClipConfig::validate`]).
    pub fn tiny(image_size: usize) -> Self {
        Self {
            vision_config: ClipVisionConfig {
                image_size,
                patch_size: 8,
                hidden_size: 64,
                intermediate_size: 256,
                num_hidden_layers: 2,
                num_attention_heads: 2,
                ..ClipVisionConfig::default()
            },
            text_config: ClipTextConfig {
                hidden_size: 64,
                intermediate_size: 256,
                num_hidden_layers: 2,
                num_attention_heads: 2,
                ..ClipTextConfig::default()
            },
            projection_dim: 64,
            logit_scale_init_value: 2.6592,
        }
    }

    /// Reads a Hugging Face `config.json` (a `CLIPModel` config with `vision_config` and
    /// `text_config`).
    pub fn from_json_str(json: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Reads and validates a Hugging Face `config.json` file.
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let cfg = Self::from_json_str(&text).map_err(|source| Error::ConfigJson {
            path: path.to_owned(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the configuration describes a model that can be built.
    pub fn validate(&self) -> Result<()> {
        self.vision_config.validate()?;
        self.text_config.validate()?;
        if self.projection_dim == 0 {
            return Err(Error::InvalidConfig(
                "projection_dim must be positive".into(),
            ));
        }
        if !self.logit_scale_init_value.is_finite() {
            return Err(Error::InvalidConfig(
                "logit_scale_init_value must be finite".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for cfg in [
            ClipConfig::vit_b_32(),
            ClipConfig::vit_b_16(),
            ClipConfig::vit_l_14(),
            ClipConfig::tiny(32),
        ] {
            cfg.validate().unwrap();
        }
        assert_eq!(ClipConfig::vit_b_32().vision_config.num_positions(), 50);
        assert_eq!(ClipConfig::vit_b_16().vision_config.num_positions(), 197);
        assert_eq!(ClipConfig::vit_l_14().vision_config.num_positions(), 257);
    }

    #[test]
    fn image_size_not_multiple_of_patch_is_rejected() {
        let err = ClipConfig::tiny(30).validate().unwrap_err();
        assert!(
            err.to_string().contains("not a multiple of patch_size"),
            "{err}"
        );
    }

    #[test]
    fn heads_must_divide_width() {
        let mut cfg = ClipConfig::tiny(32);
        cfg.text_config.num_attention_heads = 3;
        assert!(matches!(cfg.validate(), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn parses_hub_style_config_with_missing_fields() {
        // Shaped like openai/clip-vit-base-patch32's config.json, trimmed: extra keys ignored,
        // absent keys take the transformers defaults.
        let json = r#"{
            "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512,
            "logit_scale_init_value": 2.6592,
            "text_config": {"hidden_act": "quick_gelu", "eos_token_id": 2, "bos_token_id": 0,
                            "vocab_size": 49408, "dropout": 0.0},
            "vision_config": {"patch_size": 32, "hidden_act": "quick_gelu", "dropout": 0.0}
        }"#;
        let cfg = ClipConfig::from_json_str(json).unwrap();
        assert_eq!(cfg.text_config.eos_token_id, 2);
        let mut expected = ClipConfig::vit_b_32();
        expected.text_config.eos_token_id = 2;
        assert_eq!(cfg, expected);
    }

    #[test]
    fn activation_names() {
        let a: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
        assert_eq!(a, Activation::GeluTanh);
        let a: Activation = serde_json::from_str("\"gelu\"").unwrap();
        assert_eq!(a, Activation::Gelu);
        assert!(serde_json::from_str::<Activation>("\"relu\"").is_err());
    }
}
