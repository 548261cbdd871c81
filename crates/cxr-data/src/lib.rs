//! cxr-data (skeleton)
