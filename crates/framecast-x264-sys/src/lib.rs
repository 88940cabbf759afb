//! Raw bindings to the system libx264, generated from its `x264.h` at build time (see
//! `build.rs` for why). Only framecast-encode's x264 backend uses them; everything here is
//! `unsafe` C API, documented in x264.h.
//!
//! libx264 is GPL-2.0-or-later: a binary linking it is distributed under the GPL.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_docs
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
