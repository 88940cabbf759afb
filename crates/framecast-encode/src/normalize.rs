//! The shared H.264 normaliser: every backend's output passes through it, so the invariants
//! hold whatever the backend wrote.
//!
//! * SPS and PPS precede every IDR (re-inserted from the last ones seen when a backend sends
//!   them out of band or only once).
//! * The SPS is rewritten: VUI `bitstream_restriction_flag=1`, `max_num_reorder_frames` = the
//!   backend's reordering depth (0 without B-frames), `max_dec_frame_buffering` = the
//!   reference count, the configured colour description, and
//!   frame cropping to the display size.
//! * The codec string is derived from the SPS actually emitted.
//! * Output in the configured byte format (Annex B or 4-byte AVCC).

use crate::backend::{RawAccessUnit, RawFormat};
use crate::{EncodeError, OutputFormat};
use framecast_core::ColorSpace;
use framecast_h264::avcc::AvcDecoderConfig;
use framecast_h264::codec::codec_string;
use framecast_h264::nal::{annexb_nals, avcc_nals, nal_type, NalType};
use framecast_h264::sps::{rewrite_sps, SpsRewrite};
use std::sync::Arc;

/// A normalised access unit.
#[derive(Debug, Clone)]
pub struct NormalizedUnit {
    /// NAL units in the requested format.
    pub data: Vec<u8>,
    /// Contains an IDR slice.
    pub keyframe: bool,
    /// Codec string of the SPS in force.
    pub codec: Arc<str>,
}

/// Parameter-set state of one stream.
#[derive(Debug)]
pub struct Normalizer {
    backend: &'static str,
    rewrite: SpsRewrite,
    output: OutputFormat,
    /// (original SPS as the backend wrote it, rewritten SPS), to rewrite each distinct SPS once.
    sps: Option<(Vec<u8>, Vec<u8>)>,
    pps: Option<Vec<u8>>,
    codec: Option<Arc<str>>,
}

impl Normalizer {
    /// A normaliser for a stream of `width x height` in colour space `color`, whose decoders
    /// hold back `reorder` frames (the backend's [`crate::backend::BackendEncoder::reorder_depth`]).
    pub fn new(
        backend: &'static str,
        width: u32,
        height: u32,
        color: ColorSpace,
        output: OutputFormat,
        reorder: u32,
    ) -> Self {
        Normalizer {
            backend,
            rewrite: SpsRewrite {
                display_size: Some((width, height)),
                video_full_range_flag: color.full_range(),
                colour_primaries: color.primaries_code(),
                transfer_characteristics: color.transfer_code(),
                matrix_coefficients: color.matrix_code(),
                max_dec_frame_buffering: None,
                max_num_reorder_frames: reorder,
                gaps_in_frame_num_allowed: None,
            },
            output,
            sps: None,
            pps: None,
            codec: None,
        }
    }

    /// Write `gaps_in_frame_num_value_allowed_flag = 1` into every SPS when `allow` (see
    /// [`crate::backend::BackendEncoder::frame_num_gaps`]).
    pub fn allow_frame_num_gaps_if(mut self, allow: bool) -> Self {
        if allow {
            self.rewrite.gaps_in_frame_num_allowed = Some(true);
        }
        self
    }

    /// The codec string, once the first SPS has been seen.
    pub fn codec(&self) -> Option<Arc<str>> {
        self.codec.clone()
    }

    /// The avcC record for the parameter sets in force.
    pub fn avcc(&self) -> Option<Vec<u8>> {
        let (_, sps) = self.sps.as_ref()?;
        let pps = self.pps.as_ref()?;
        AvcDecoderConfig::from_parameter_sets(sps, pps)
            .ok()
            .map(|c| c.to_bytes())
    }

    fn contract(&self, message: impl Into<String>) -> EncodeError {
        EncodeError::Contract {
            backend: self.backend,
            message: message.into(),
        }
    }

    fn take_sps(&mut self, nal: &[u8]) -> Result<(), EncodeError> {
        if let Some((orig, _)) = &self.sps {
            if orig == nal {
                return Ok(());
            }
        }
        let rewritten = rewrite_sps(nal, &self.rewrite)?;
        self.codec = Some(codec_string(&rewritten)?.into());
        self.sps = Some((nal.to_vec(), rewritten));
        Ok(())
    }

    /// Normalise one access unit.
    pub fn process(&mut self, au: &RawAccessUnit) -> Result<NormalizedUnit, EncodeError> {
        if let Some((sps, pps)) = &au.parameter_sets {
            self.take_sps(sps)?;
            self.pps = Some(pps.clone());
        }
        let mut nals: Vec<&[u8]> = Vec::new();
        match au.format {
            RawFormat::AnnexB => nals.extend(annexb_nals(&au.data)),
            RawFormat::Avcc { length_size } => {
                for nal in avcc_nals(&au.data, length_size) {
                    nals.push(nal?);
                }
            }
        }
        let mut keyframe = false;
        let mut body: Vec<&[u8]> = Vec::with_capacity(nals.len());
        for nal in nals {
            match nal_type(nal) {
                Some(NalType::Sps) => self.take_sps(nal)?,
                Some(NalType::Pps) => self.pps = Some(nal.to_vec()),
                // Access unit delimiters carry nothing a decoder needs and would have to sit
                // before the parameter sets; drop them.
                Some(NalType::Aud) => {}
                Some(NalType::IdrSlice) => {
                    keyframe = true;
                    body.push(nal);
                }
                Some(_) => body.push(nal),
                None => {}
            }
        }
        if !body.iter().any(|n| nal_type(n).is_some_and(|t| t.is_vcl())) {
            return Err(self.contract(format!("access unit for token {} holds no slice", au.token)));
        }
        let codec = self
            .codec
            .clone()
            .ok_or_else(|| self.contract("stream started without an SPS"))?;
        let mut ordered: Vec<&[u8]> = Vec::with_capacity(body.len() + 2);
        if keyframe {
            let (sps, pps) = match (&self.sps, &self.pps) {
                (Some((_, sps)), Some(pps)) => (sps.as_slice(), pps.as_slice()),
                _ => return Err(self.contract("IDR without SPS/PPS")),
            };
            ordered.push(sps);
            ordered.push(pps);
        }
        ordered.extend(body);
        let size: usize = ordered.iter().map(|n| n.len() + 4).sum();
        let mut data = Vec::with_capacity(size);
        for nal in ordered {
            match self.output {
                OutputFormat::AnnexB => data.extend_from_slice(&[0, 0, 0, 1]),
                OutputFormat::Avcc => data.extend_from_slice(&(nal.len() as u32).to_be_bytes()),
            }
            data.extend_from_slice(nal);
        }
        Ok(NormalizedUnit {
            data,
            keyframe,
            codec,
        })
    }
}
