//! streamscope-wire
