//! streamscope-flow
