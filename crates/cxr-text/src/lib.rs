//! cxr-text (skeleton)
