//! `_native.Encoder`: frames in, `EncodedPacket`s out (design document 000's contract), by a
//! local backend or by a remote VTR1 server behind the same API.

use crate::errors::{encode_error, value_error, ClosedError};
use crate::remote::{RemoteEncoder, RemoteSettings};
use crate::settings::EncoderKeywords;
use framecast_encode::{
    BackpressurePolicy, DropReason, EncodeMode, Encoder, EncoderEvent, FrameMeta, OutputFormat,
    PacketTimings, SendOutcome,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// One encoded access unit.
#[pyclass(module = "framecast._native", frozen, get_all)]
pub struct EncodedPacket {
    /// The NAL units (Annex B or AVCC, see `packet_format`); keyframes carry SPS/PPS.
    pub data: Py<PyBytes>,
    /// Presentation time, ns.
    pub pts_ns: i64,
    /// Decode time, ns (equal to `pts_ns`: no reordering).
    pub dts_ns: i64,
    /// Nominal duration, ns.
    pub duration_ns: i64,
    /// IDR access unit.
    pub is_keyframe: bool,
    /// A packet of parameter sets only (framecast puts them in band in keyframes instead, so
    /// this is False; the avcC is `Encoder.extradata`).
    pub is_codec_config: bool,
    /// `"h264"`.
    pub codec: &'static str,
    /// RFC 6381 codec string of the SPS in force, e.g. `"avc1.42C01F"`.
    pub codec_string: String,
    /// `"annexb"` or `"avcc"`.
    pub packet_format: &'static str,
    /// The number `encode()` returned for this frame's call (0, 1, 2, ...).
    pub token: u64,
    /// RGB→YUV conversion time, ms.
    pub convert_ms: f64,
    /// Time in the encoder, ms.
    pub encode_ms: f64,
    /// Time waiting for the encoder (pipelined mode), ms.
    pub queue_ms: f64,
}

#[pymethods]
impl EncodedPacket {
    fn __repr__(&self) -> String {
        format!(
            "EncodedPacket(token={}, pts_ns={}, is_keyframe={}, codec_string={:?})",
            self.token,
            self.pts_ns,
            if self.is_keyframe { "True" } else { "False" },
            self.codec_string
        )
    }
}

/// A frame the pipelined encoder dropped under its backpressure policy.
#[pyclass(module = "framecast._native", frozen, get_all)]
pub struct DroppedFrame {
    /// The number `encode()` returned for that frame's call.
    pub token: u64,
    /// Its presentation time, ns.
    pub pts_ns: i64,
    /// `"encoder_full"` (drop_new) or `"superseded"` (drop_old).
    pub reason: &'static str,
}

#[pymethods]
impl DroppedFrame {
    fn __repr__(&self) -> String {
        format!(
            "DroppedFrame(token={}, pts_ns={}, reason={:?})",
            self.token, self.pts_ns, self.reason
        )
    }
}

/// What an encoder produced, before it becomes Python objects.
pub(crate) enum Produced {
    Packet {
        data: bytes::Bytes,
        pts_ns: i64,
        duration_ns: i64,
        keyframe: bool,
        codec_string: String,
        token: u64,
        timings: PacketTimings,
    },
    Dropped {
        token: u64,
        pts_ns: i64,
        reason: DropReason,
    },
}

enum Engine {
    Local(Box<Encoder>),
    Remote(Box<RemoteEncoder>),
}

/// An H.264 encoder for Python. (The state sits in a `Mutex` only to make the class `Sync`
/// as PyO3 requires; Python's borrow checking already gives each call exclusive access.)
#[pyclass(module = "framecast._native", name = "Encoder")]
pub struct NativeEncoder {
    state: std::sync::Mutex<State>,
    /// Converts CUDA frames on their GPU (made on the first one).
    cuda: std::sync::Mutex<crate::cuda::CudaSlot>,
}

struct State {
    engine: Option<Engine>,
    /// The encoder's colour space, which CUDA frames are converted with.
    color: framecast_core::ColorSpace,
    width: u32,
    height: u32,
    frame_ns: i64,
    next_token: u64,
    packet_format: &'static str,
    pixel_format: Option<String>,
    last_timings: PacketTimings,
    /// Packets that came out during a call that then raised (a full fail_fast encoder):
    /// handed out by the next call, never lost.
    pending: Vec<Produced>,
}

impl State {
    fn engine(&mut self) -> PyResult<&mut Engine> {
        self.engine
            .as_mut()
            .ok_or_else(|| ClosedError::new_err("the encoder is closed"))
    }

    fn python_objects(
        &mut self,
        py: Python<'_>,
        produced: Vec<Produced>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let fmt = self.packet_format;
        produced
            .into_iter()
            .map(|p| -> PyResult<Py<PyAny>> {
                Ok(match p {
                    Produced::Packet {
                        data,
                        pts_ns,
                        duration_ns,
                        keyframe,
                        codec_string,
                        token,
                        timings,
                    } => {
                        self.last_timings = timings;
                        Py::new(
                            py,
                            EncodedPacket {
                                data: PyBytes::new(py, &data).unbind(),
                                pts_ns,
                                dts_ns: pts_ns,
                                duration_ns,
                                is_keyframe: keyframe,
                                is_codec_config: false,
                                codec: "h264",
                                codec_string,
                                packet_format: fmt,
                                token,
                                convert_ms: timings.convert_ms,
                                encode_ms: timings.encode_ms,
                                queue_ms: timings.queue_ms,
                            },
                        )?
                        .into_any()
                    }
                    Produced::Dropped {
                        token,
                        pts_ns,
                        reason,
                    } => Py::new(
                        py,
                        DroppedFrame {
                            token,
                            pts_ns,
                            reason: match reason {
                                DropReason::EncoderFull => "encoder_full",
                                DropReason::Superseded => "superseded",
                            },
                        },
                    )?
                    .into_any(),
                })
            })
            .collect()
    }
}

fn local_events(
    enc: &mut Encoder,
    out: &mut Vec<Produced>,
) -> Result<(), framecast_encode::EncodeError> {
    while let Some(ev) = enc.receive()? {
        out.push(local_event(ev));
    }
    Ok(())
}

fn local_event(ev: EncoderEvent) -> Produced {
    match ev {
        EncoderEvent::Packet(p) => Produced::Packet {
            data: p.data,
            pts_ns: p.pts_ns,
            duration_ns: p.duration_ns,
            keyframe: p.keyframe,
            codec_string: p.codec.to_string(),
            token: p.token,
            timings: p.timings,
        },
        EncoderEvent::Dropped(d) => Produced::Dropped {
            token: d.token,
            pts_ns: d.pts_ns,
            reason: d.reason,
        },
    }
}

impl NativeEncoder {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl NativeEncoder {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        width, height, *, fps = 30.0, bitrate = None, gop = None, backend = "auto",
        color = "bt709", range = "limited", packet_format = "annexb",
        max_in_flight_frames = 0, drop_policy = "block", pixel_format = None,
        remote = None, token = None, compression = "lz4", timeout = 10.0
    ))]
    fn new(
        py: Python<'_>,
        width: u32,
        height: u32,
        fps: f64,
        bitrate: Option<u32>,
        gop: Option<u32>,
        backend: &str,
        color: &str,
        range: &str,
        packet_format: &str,
        max_in_flight_frames: usize,
        drop_policy: &str,
        pixel_format: Option<String>,
        remote: Option<String>,
        token: Option<String>,
        compression: &str,
        timeout: f64,
    ) -> PyResult<Self> {
        let mut config = EncoderKeywords {
            fps,
            bitrate,
            gop,
            backend,
            color,
            range,
        }
        .config(width, height)?;
        let (output, format_name) = match packet_format {
            "annexb" => (OutputFormat::AnnexB, "annexb"),
            "avcc" => (OutputFormat::Avcc, "avcc"),
            other => {
                return Err(value_error(format!(
                    "packet_format {other:?}: use \"annexb\" or \"avcc\""
                )))
            }
        };
        config.output = output;
        let policy = match drop_policy {
            "block" => BackpressurePolicy::Block,
            "fail_fast" => BackpressurePolicy::FailFast,
            "drop_new" => BackpressurePolicy::DropNew,
            "drop_old" => BackpressurePolicy::DropOld,
            other => {
                return Err(value_error(format!(
                    "drop_policy {other:?}: use block, fail_fast, drop_new or drop_old"
                )))
            }
        };
        config.mode = match max_in_flight_frames {
            0 => EncodeMode::Sync,
            n => EncodeMode::Pipelined {
                max_in_flight: n,
                policy,
            },
        };
        let color = config.color;
        let engine = match remote {
            None => {
                let enc = py.detach(|| Encoder::new(config)).map_err(encode_error)?;
                Engine::Local(Box::new(enc))
            }
            Some(addr) => {
                config.validate().map_err(encode_error)?;
                let settings = RemoteSettings {
                    addr,
                    token: token.unwrap_or_default(),
                    config,
                    window: max_in_flight_frames,
                    compression: compression.parse().map_err(|e: String| value_error(e))?,
                    timeout: std::time::Duration::from_secs_f64(timeout.max(0.1)),
                };
                Engine::Remote(Box::new(RemoteEncoder::connect(py, settings)?))
            }
        };
        Ok(NativeEncoder {
            cuda: Default::default(),
            state: std::sync::Mutex::new(State {
                engine: Some(engine),
                color,
                width,
                height,
                frame_ns: (1e9 / fps).round() as i64,
                next_token: 0,
                packet_format: format_name,
                pixel_format,
                last_timings: PacketTimings::default(),
                pending: Vec::new(),
            }),
        })
    }

    /// Encode one frame; returns the packets (and drop reports) ready now, in order.
    #[pyo3(signature = (frame, pts_ns = None, force_keyframe = false, pixel_format = None))]
    fn encode(
        &mut self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        pts_ns: Option<i64>,
        force_keyframe: bool,
        pixel_format: Option<String>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let hint = pixel_format.or_else(|| st.pixel_format.clone());
        let cuda = self.cuda.get_mut().unwrap_or_else(|e| e.into_inner());
        let input = crate::cuda::input(cuda, frame, hint.as_deref(), st.color)?;
        let view = input.view();
        if (view.width(), view.height()) != (st.width, st.height) {
            return Err(value_error(format!(
                "frame is {}x{} but the encoder is {}x{}: make a new Encoder for a new size",
                view.width(),
                view.height(),
                st.width,
                st.height
            )));
        }
        let token = st.next_token;
        let meta = FrameMeta {
            token,
            pts_ns: pts_ns.unwrap_or(token as i64 * st.frame_ns),
            force_keyframe,
        };
        let produced = match st.engine()? {
            Engine::Local(enc) => {
                let (outcome, out) = py
                    .detach(|| -> Result<_, framecast_encode::EncodeError> {
                        // SAFETY: `host` holds the array the view reads; it outlives this call.
                        let frame = unsafe { view.frame() }?;
                        let outcome = enc.send_frame(&frame, meta)?;
                        let mut out = Vec::new();
                        local_events(enc, &mut out)?;
                        Ok((outcome, out))
                    })
                    .map_err(encode_error)?;
                if outcome == SendOutcome::Busy {
                    st.pending.extend(out);
                    return Err(pyo3::exceptions::PyBlockingIOError::new_err(
                        "the encoder is full (drop_policy=\"fail_fast\"): the frame was not \
                         taken; try again once packets come out",
                    ));
                }
                out
            }
            Engine::Remote(r) => r.encode(py, view, meta)?,
        };
        st.next_token += 1;
        drop(input);
        let mut all = std::mem::take(&mut st.pending);
        all.extend(produced);
        st.python_objects(py, all)
    }

    /// Everything still inside the encoder, in order; the encoder takes no more frames.
    fn flush(&mut self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let produced = match st.engine()? {
            Engine::Local(enc) => py
                .detach(|| enc.flush())
                .map_err(encode_error)?
                .into_iter()
                .map(local_event)
                .collect(),
            Engine::Remote(r) => r.flush(py)?,
        };
        let mut all = std::mem::take(&mut st.pending);
        all.extend(produced);
        st.python_objects(py, all)
    }

    /// Release the encoder (and a remote session). Further calls raise `ClosedError`.
    fn close(&mut self, py: Python<'_>) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(Engine::Remote(mut r)) = st.engine.take() {
            r.abort(py);
        }
    }

    /// The RFC 6381 codec string of the stream (None before the first keyframe).
    #[getter]
    fn codec_string(&self) -> Option<String> {
        match self.lock().engine.as_ref()? {
            Engine::Local(e) => e.codec_string().map(|c| c.to_string()),
            Engine::Remote(r) => r.codec_string(),
        }
    }

    /// The avcC record (AVCDecoderConfigurationRecord) for containers, or None before the
    /// first keyframe.
    #[getter]
    fn extradata<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        let avcc = match self.lock().engine.as_ref()? {
            Engine::Local(e) => e.avcc()?,
            Engine::Remote(r) => r.extradata()?,
        };
        Some(PyBytes::new(py, &avcc))
    }

    /// Timings of the last packet: `{"convert_ms", "encode_ms", "queue_ms"}`.
    #[getter]
    fn last_timings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = self.lock().last_timings;
        let d = PyDict::new(py);
        d.set_item("convert_ms", t.convert_ms)?;
        d.set_item("encode_ms", t.encode_ms)?;
        d.set_item("queue_ms", t.queue_ms)?;
        Ok(d)
    }

    /// The backend encoding: a registry name, or `remote:HOST:PORT`.
    #[getter]
    fn backend(&self) -> String {
        match &self.lock().engine {
            Some(Engine::Local(e)) => e.backend_name().to_owned(),
            Some(Engine::Remote(r)) => format!("remote:{}", r.addr()),
            None => "closed".into(),
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.lock().engine.is_none()
    }
}
