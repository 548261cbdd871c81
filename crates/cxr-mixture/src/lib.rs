//! cxr-mixture (skeleton)
