//! cxr-clip (skeleton)
