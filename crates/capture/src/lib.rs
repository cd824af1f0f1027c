//! streamscope-capture
