//! cxr-eval (skeleton)
