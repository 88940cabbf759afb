//! `framecast demo` and `framecast serve`: live streaming to browsers.
//!
//! Until the viewer server lands, `demo` encodes the demo scene to a file.

use crate::Failure;
use clap::Args;

pub use crate::encode::DemoArgs;

/// Arguments of `framecast serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {}

/// `framecast demo`.
pub fn demo(a: DemoArgs) -> Result<(), Failure> {
    crate::encode::demo(a)
}

/// `framecast serve`.
pub fn serve(_a: ServeArgs) -> Result<(), Failure> {
    Err(Failure {
        error: anyhow::anyhow!("`framecast serve` is not built yet"),
        code: crate::exit::USAGE,
    })
}
