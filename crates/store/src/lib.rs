//! streamscope-store
