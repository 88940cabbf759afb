//! `framecast remote`: the VTR1 remote-encode service and client.

use crate::Failure;
use clap::Args;

/// Arguments of `framecast remote`.
#[derive(Args, Debug)]
pub struct RemoteArgs {}

/// `framecast remote`.
pub fn run(_a: RemoteArgs) -> Result<(), Failure> {
    Err(Failure {
        error: anyhow::anyhow!("`framecast remote` is not built yet"),
        code: crate::exit::USAGE,
    })
}
