//! `framecast`: encode, inspect and (soon) stream H.264 from rendered frames.

mod args;
mod bench;
mod doctor;
mod encode;
mod fanout;
mod gpu_live;
mod output;
mod psnr;
mod remote;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes a script can act on.
pub mod exit {
    /// Bad command line (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// The input could not be read or is malformed.
    pub const INPUT: u8 = 3;
    /// The output could not be written.
    pub const OUTPUT: u8 = 4;
    /// The encoder failed or is unavailable.
    pub const ENCODER: u8 = 5;
}

#[derive(Parser)]
#[command(
    name = "framecast",
    version,
    about = "Low-latency H.264 from rendered frames: encode to files, inspect the machine, benchmark.",
    long_about = "framecast turns rendered frames (RGBA/BGRA/RGB/float/NV12/I420, y4m or raw files, or built-in \
                  animated patterns) into low-latency H.264: no B-frames, SPS/PPS on every keyframe, VUI that tells \
                  decoders not to buffer, and the exact colour signalling of the conversion.",
    after_help = "Exit codes: 0 success, 2 bad arguments, 3 unreadable or malformed input, 4 output not writable, \
                  5 encoder failure or unavailable backend.\nLogs: set RUST_LOG=debug for details."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode a file or a built-in pattern to .h264 (Annex B) or .mp4 (fast start).
    Encode(encode::EncodeArgs),
    /// The main job: serve animated demo scenes to browsers at http://127.0.0.1:8765.
    Demo(serve::DemoArgs),
    /// Stream a file or a built-in pattern live to browsers.
    Serve(serve::ServeArgs),
    /// The VTR1 remote-encode service and its client (byte-compatible with VideoToolbox Remote).
    Remote(remote::RemoteArgs),
    /// Report which encoder backends and accelerations work on this machine.
    Doctor(doctor::DoctorArgs),
    /// Measure encode time per frame against ffmpeg's libx264 on the same frames.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: escape codes in a log file or a test's output are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Encode(a) => encode::run(a),
        Command::Demo(a) => serve::demo(a),
        Command::Serve(a) => serve::serve(a),
        Command::Remote(a) => remote::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", one_line(&failure.error));
            ExitCode::from(failure.code)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the line already holds
/// (library errors often repeat their source in their own message).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// An error with the exit code it maps to.
pub struct Failure {
    /// What went wrong, with context.
    pub error: anyhow::Error,
    /// Process exit code.
    pub code: u8,
}

/// Attach an exit code to any error.
pub trait WithCode<T> {
    /// Map the error to a [`Failure`] with `code`.
    fn code(self, code: u8) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> WithCode<T> for Result<T, E> {
    fn code(self, code: u8) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            error: e.into(),
            code,
        })
    }
}
