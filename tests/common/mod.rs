//! Shared setup of the workspace integration tests.

use std::path::Path;

use cxr_cml::train::TrainConfig;

/// The demo config shrunk for tests: `patients` synthetic patients generated under `root`,
/// 32 px images, 32-token texts, no progress bars. Each test sets the rest.
pub fn tiny_config(root: &Path, patients: usize) -> TrainConfig {
    let mut cfg = TrainConfig::demo();
    cfg.data.synth_patients = patients;
    cfg.data.synth_image_size = 64;
    cfg.data.synth_dir = Some(root.join("synth"));
    cfg.data.cache_dir = Some(root.join("cache"));
    cfg.model.image_size = 32;
    cfg.model.context_length = 32;
    cfg.train_loop.progress = false;
    cfg
}
