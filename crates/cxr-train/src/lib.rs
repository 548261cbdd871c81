//! cxr-train (skeleton)
