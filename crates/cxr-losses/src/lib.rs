//! cxr-losses (skeleton)
