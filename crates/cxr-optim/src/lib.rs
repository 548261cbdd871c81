//! cxr-optim (skeleton)
