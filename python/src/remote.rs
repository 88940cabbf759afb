//! The remote engine of `Encoder(..., remote="host:port")`: frames go to a VTR1 server (a
//! Mac's VideoToolbox through `vtremoted`, or another framecast) and its packets come back
//! behind the same contract as a local encoder.
//!
//! The session runs as [`framecast_remote::failover::ServerPool::run_encode`] on the shared
//! runtime: frames go in through a channel, packets come out through another; a server lost
//! mid-stream is replaced by the next of the pool (a `RuntimeWarning` says so). With
//! `max_in_flight_frames` 0 each `encode()` waits for its own packet (1-in-1-out); above 0
//! that many frames may be in flight and `encode()` returns what has arrived.

use crate::encoder::Produced;
use crate::errors::{value_error, ClosedError, RemoteError};
use crate::frames::HostView;
use crate::runtime::runtime;
use framecast_core::ColorSpace;
use framecast_encode::{EncoderConfig, FrameMeta, OutputFormat, PacketTimings};
use framecast_remote::client::{ClientOptions, RunError, StreamStats};
use framecast_remote::failover::{Failover, Resumed, ServerPool};
use framecast_remote::planes::FramePlanes;
use framecast_remote::wire::{pix_fmt, Configure, FrameMsg, Message, FLAG_KEYFRAME};
use framecast_remote::Compression;
use pyo3::prelude::*;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Time base of the session: microseconds.
const TB_DEN: u32 = 1_000_000;
const NS_PER_TICK: i64 = 1_000_000_000 / TB_DEN as i64;

/// What the caller gave for a frame on the wire, to put on its packet.
struct InFlight {
    token: u64,
    /// The caller's pts in ns; the wire carries it in `TB_DEN` units.
    pts_ns: i64,
    wire_pts: i64,
    sent: Instant,
    convert_ms: f64,
}

pub(crate) struct RemoteSettings {
    pub addr: String,
    pub token: String,
    pub config: EncoderConfig,
    pub window: usize,
    pub compression: Compression,
    pub timeout: Duration,
}

type Task = tokio::task::JoinHandle<Result<StreamStats, RunError<Infallible>>>;

pub(crate) struct RemoteEncoder {
    addr: String,
    input: Option<mpsc::Sender<Message>>,
    output: mpsc::UnboundedReceiver<Message>,
    task: Option<Task>,
    planes: FramePlanes,
    color: ColorSpace,
    /// Frames sent whose packet has not come back.
    in_flight: usize,
    window: usize,
    /// The frames in flight, in order (the server keeps the order).
    in_flight_frames: std::collections::VecDeque<InFlight>,
    frame_ns: i64,
    output_format: OutputFormat,
    extradata: Option<Vec<u8>>,
    codec_string: Option<String>,
    timeout: Duration,
    /// Servers the session moved to mid-stream, not yet reported (the session's task writes,
    /// the Python thread reads and warns).
    moves: Arc<Mutex<Vec<Moved>>>,
}

/// The session lost its server mid-stream and went on on another.
struct Moved {
    server: String,
    message: String,
}

impl From<&Resumed> for Moved {
    fn from(r: &Resumed) -> Self {
        Moved {
            server: r.server.clone(),
            message: format!("remote encoder: {r}"),
        }
    }
}

fn remote_error(e: impl std::fmt::Display) -> PyErr {
    RemoteError::new_err(e.to_string())
}

impl RemoteEncoder {
    pub fn connect(py: Python<'_>, s: RemoteSettings) -> PyResult<Self> {
        let c = &s.config;
        let fps = framecast_core::fps_ratio(c.fps);
        let mut cfg = Configure {
            width: c.width,
            height: c.height,
            pix_fmt: pix_fmt::NV12,
            tb_num: 1,
            tb_den: TB_DEN,
            fr_num: fps.0,
            fr_den: fps.1,
            ..Configure::default()
        };
        cfg.set_option("mode", "encode");
        cfg.set_option("bitrate", c.bitrate.to_string());
        cfg.set_option("gop", c.keyframe_interval.to_string());
        cfg.set_option("wire_compression", s.compression.wire_value().to_string());
        // FFmpeg's AVColorSpace / range numbers of the conversion done here.
        let (matrix, range) = (
            c.color.matrix_code(),
            if c.color.full_range() { 2 } else { 1 },
        );
        cfg.set_option("colorspace", matrix.to_string());
        cfg.set_option("color_range", range.to_string());
        let opts = ClientOptions {
            token: s.token.clone(),
            timeout: s.timeout,
            ..ClientOptions::default()
        };
        let addr = s.addr.clone();
        let window = s.window;
        let (in_tx, in_rx) = mpsc::channel::<Message>(window.max(1));
        let moves = Arc::new(Mutex::new(Vec::new()));
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
        let (ack, task, server) = py
            .detach(|| {
                runtime().block_on(async {
                    let pool = ServerPool::parse(&addr, Failover::default())?;
                    let established = pool.establish(&opts, |_| cfg.clone()).await?;
                    let (ack, server) = (established.ack.clone(), established.server.clone());
                    let resumes = Arc::clone(&moves);
                    let task = tokio::spawn(async move {
                        pool.run_encode(
                            &opts,
                            established,
                            in_rx,
                            window.max(1),
                            move |m| {
                                let _ = out_tx.send(m);
                                Ok::<(), Infallible>(())
                            },
                            move |r| resumes.lock().unwrap().push(Moved::from(r)),
                        )
                        .await
                    });
                    Ok::<_, framecast_remote::RemoteError>((ack, task, server))
                })
            })
            .map_err(|e| RemoteError::new_err(format!("remote encoder {}: {e}", s.addr)))?;
        Ok(RemoteEncoder {
            addr: server,
            input: Some(in_tx),
            output: out_rx,
            task: Some(task),
            planes: FramePlanes::new(s.compression),
            color: c.color,
            in_flight: 0,
            window,
            in_flight_frames: Default::default(),
            frame_ns: c.frame_duration_ns(),
            output_format: c.output,
            extradata: (!ack.extradata.is_empty()).then(|| ack.extradata.to_vec()),
            codec_string: None,
            timeout: s.timeout,
            moves,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Report each move to another server once, as a `RuntimeWarning` (on the Python thread:
    /// the session's task never calls Python).
    fn report_moves(&mut self, py: Python<'_>) -> PyResult<()> {
        let moves = std::mem::take(&mut *self.moves.lock().unwrap());
        for m in moves {
            self.addr = m.server;
            let message = std::ffi::CString::new(m.message).unwrap_or_default();
            PyErr::warn(
                py,
                &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(),
                &message,
                1,
            )?;
        }
        Ok(())
    }

    pub fn codec_string(&self) -> Option<String> {
        self.codec_string.clone()
    }

    pub fn extradata(&self) -> Option<Vec<u8>> {
        self.extradata.clone()
    }

    /// The session ended early: its error.
    fn failure(&mut self, py: Python<'_>) -> PyErr {
        self.input = None;
        match self.task.take() {
            Some(task) => match py.detach(|| runtime().block_on(task)) {
                Ok(Err(e)) => remote_error(format!("remote encoder {}: {e}", self.addr)),
                Ok(Ok(_)) => remote_error(format!(
                    "remote encoder {}: the session ended before every frame came back",
                    self.addr
                )),
                Err(e) => remote_error(format!("remote encoder {}: {e}", self.addr)),
            },
            None => ClosedError::new_err("the remote session has ended"),
        }
    }

    fn produced(&mut self, m: Message) -> PyResult<Produced> {
        let Message::Packet(p) = m else {
            return Err(remote_error(format!(
                "remote encoder {}: expected a PACKET, got {}",
                self.addr,
                m.kind()
            )));
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        let frame = self.in_flight_frames.pop_front().unwrap_or(InFlight {
            token: 0,
            pts_ns: p.pts.saturating_mul(NS_PER_TICK),
            wire_pts: p.pts,
            sent: Instant::now(),
            convert_ms: 0.0,
        });
        // The wire rounds pts to microseconds: give back the caller's own value when the
        // server kept it (VTR1 servers do), else what the server says.
        let pts_ns = if p.pts == frame.wire_pts {
            frame.pts_ns
        } else {
            p.pts.saturating_mul(NS_PER_TICK)
        };
        let keyframe = p.flags & FLAG_KEYFRAME != 0;
        if keyframe {
            if let Some(sps) = framecast_h264::nal::annexb_nals(&p.data)
                .find(|n| n.first().is_some_and(|b| b & 0x1f == 7))
            {
                if let Ok(c) = framecast_h264::codec::codec_string(sps) {
                    self.codec_string = Some(c);
                }
            }
        }
        let data = match self.output_format {
            OutputFormat::AnnexB => p.data,
            OutputFormat::Avcc => bytes::Bytes::from(
                framecast_h264::nal::annexb_to_avcc(&p.data, 4)
                    .map_err(|e| remote_error(format!("the server sent a bad packet: {e}")))?,
            ),
        };
        Ok(Produced::Packet {
            data,
            pts_ns,
            duration_ns: if p.duration > 0 {
                p.duration.saturating_mul(NS_PER_TICK)
            } else {
                self.frame_ns
            },
            keyframe,
            codec_string: self.codec_string.clone().unwrap_or_default(),
            token: frame.token,
            timings: PacketTimings {
                convert_ms: frame.convert_ms,
                encode_ms: frame.sent.elapsed().as_secs_f64() * 1e3,
                queue_ms: 0.0,
            },
        })
    }

    pub fn encode(
        &mut self,
        py: Python<'_>,
        view: HostView,
        meta: FrameMeta,
    ) -> PyResult<Vec<Produced>> {
        let Some(input) = self.input.clone() else {
            return Err(ClosedError::new_err(
                "the remote encoder was flushed or closed",
            ));
        };
        let planes = &mut self.planes;
        let color = self.color;
        let converted = py.detach(|| {
            let t0 = Instant::now();
            // SAFETY: the caller's HostFrame keeps the array alive for this call.
            let frame = unsafe { view.frame() }.map_err(|e| e.to_string())?;
            let planes = planes.nv12(&frame, color).map_err(|e| e.to_string())?;
            Ok::<_, String>((planes, t0.elapsed().as_secs_f64() * 1e3))
        });
        let (planes, convert_ms) = converted.map_err(value_error)?;
        let wire_pts = meta.pts_ns.div_euclid(NS_PER_TICK);
        let msg = Message::Frame(FrameMsg {
            pts: wire_pts,
            duration: self.frame_ns / NS_PER_TICK,
            flags: if meta.force_keyframe {
                FLAG_KEYFRAME
            } else {
                0
            },
            planes,
            side_data: vec![],
        });
        let sent = py.detach(|| input.blocking_send(msg).is_ok());
        if !sent {
            return Err(self.failure(py));
        }
        self.in_flight += 1;
        self.in_flight_frames.push_back(InFlight {
            token: meta.token,
            pts_ns: meta.pts_ns,
            wire_pts,
            sent: Instant::now(),
            convert_ms,
        });
        let mut out = Vec::new();
        if self.window == 0 {
            // 1-in-1-out: this frame's packet.
            let limit = self.timeout;
            let output = &mut self.output;
            let got = py.detach(|| {
                runtime().block_on(async { tokio::time::timeout(limit, output.recv()).await })
            });
            match got {
                Ok(Some(m)) => out.push(self.produced(m)?),
                Err(_) => {
                    return Err(remote_error(format!(
                        "remote encoder {}: no packet within {:?}",
                        self.addr, limit
                    )))
                }
                Ok(None) => return Err(self.failure(py)),
            }
        }
        for m in self.ready() {
            out.push(self.produced(m)?);
        }
        self.report_moves(py)?;
        Ok(out)
    }

    /// The outputs that have arrived.
    fn ready(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.output.try_recv().ok()).collect()
    }

    /// FLUSH: the packets of every frame still in flight, then the session ends.
    pub fn flush(&mut self, py: Python<'_>) -> PyResult<Vec<Produced>> {
        self.input = None; // run_encode sends FLUSH once its input ends
        let Some(task) = self.task.take() else {
            return Ok(Vec::new());
        };
        let result = py.detach(|| runtime().block_on(task));
        let mut out = Vec::new();
        for m in self.ready() {
            out.push(self.produced(m)?);
        }
        self.report_moves(py)?;
        match result {
            Ok(Ok(_)) => Ok(out),
            Ok(Err(e)) => Err(remote_error(format!("remote encoder {}: {e}", self.addr))),
            Err(e) => Err(remote_error(format!("remote encoder {}: {e}", self.addr))),
        }
    }

    /// Drop the session without flushing.
    pub fn abort(&mut self, _py: Python<'_>) {
        self.input = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
