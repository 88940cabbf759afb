//! `AVCDecoderConfigurationRecord` (the `avcC` box of MP4, and WebCodecs' `description`).

use crate::nal::{nal_type, write_annexb, NalType};
use crate::H264Error;

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), including the high-profile
/// extension (chroma_format, bit depths, SPS-ext count) for profile_idc 100/110/122/144 and the
/// other non-Baseline/Main/Extended profiles (see `has_extension` in the source).
///
/// SPS-extension NAL units in a parsed record are validated and skipped; [`to_bytes`](Self::to_bytes)
/// writes numOfSequenceParameterSetExt = 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// AVCProfileIndication (profile_idc of the SPS).
    pub profile_idc: u8,
    /// profile_compatibility (the SPS's constraint flags byte).
    pub profile_compatibility: u8,
    /// AVCLevelIndication (level_idc of the SPS).
    pub level_idc: u8,
    /// NAL length-prefix size in bytes: 1, 2 or 4.
    pub length_size: u8,
    /// SPS NAL units (header byte included).
    pub sps: Vec<Vec<u8>>,
    /// PPS NAL units (header byte included).
    pub pps: Vec<Vec<u8>>,
    /// chroma_format (high-profile extension).
    pub chroma_format_idc: Option<u8>,
    /// bit_depth_luma_minus8 + 8 (high-profile extension).
    pub bit_depth_luma: Option<u8>,
    /// bit_depth_chroma_minus8 + 8 (high-profile extension).
    pub bit_depth_chroma: Option<u8>,
}

/// Whether the record carries the high-profile extension for this profile.
///
/// The 2004 text of 14496-15 lists profile_idc 100, 110, 122 and 144; later editions (and FFmpeg's
/// `ff_isom_write_avcc`) use "every profile except 66, 77 and 88", which adds High 4:4:4
/// Predictive (244), CAVLC 4:4:4 (44) and the SVC/MVC profiles. We follow the later rule, which
/// includes the original four, so that records match what FFmpeg writes.
fn has_extension(profile_idc: u8) -> bool {
    !matches!(profile_idc, 66 | 77 | 88)
}

impl AvcDecoderConfig {
    /// Build from one SPS and one PPS NAL unit (profile and level copied from the SPS,
    /// length_size 4).
    pub fn from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Self, H264Error> {
        let info = crate::sps::parse_sps(sps)?;
        let found = nal_type(pps).ok_or(H264Error::EmptyNal)?;
        if found != NalType::Pps {
            return Err(H264Error::UnexpectedNalType {
                expected: NalType::Pps,
                found,
                header: pps[0],
            });
        }
        for nal in [sps, pps] {
            if nal.len() > usize::from(u16::MAX) {
                return Err(H264Error::NalTooLongForLengthSize {
                    len: nal.len(),
                    length_size: 2,
                });
            }
        }
        let ext = has_extension(info.profile_idc);
        Ok(AvcDecoderConfig {
            profile_idc: info.profile_idc,
            profile_compatibility: info.constraint_flags,
            level_idc: info.level_idc,
            length_size: 4,
            sps: vec![sps.to_vec()],
            pps: vec![pps.to_vec()],
            chroma_format_idc: ext.then_some(info.chroma_format_idc as u8),
            bit_depth_luma: ext.then_some(info.bit_depth_luma),
            bit_depth_chroma: ext.then_some(info.bit_depth_chroma),
        })
    }

    /// Serialise the record. Counts and lengths beyond the format's fields (more than 31 SPS,
    /// 255 PPS, or NAL units over 65535 bytes) are truncated; build records with
    /// [`from_parameter_sets`](Self::from_parameter_sets) or [`parse`](Self::parse) to stay
    /// within them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self
                .sps
                .iter()
                .chain(&self.pps)
                .map(|n| n.len() + 2)
                .sum::<usize>(),
        );
        out.push(1); // configurationVersion
        out.push(self.profile_idc);
        out.push(self.profile_compatibility);
        out.push(self.level_idc);
        out.push(0xfc | (self.length_size.wrapping_sub(1) & 3));
        let sps = &self.sps[..self.sps.len().min(31)];
        out.push(0xe0 | sps.len() as u8);
        for nal in sps {
            push_nal(&mut out, nal);
        }
        let pps = &self.pps[..self.pps.len().min(255)];
        out.push(pps.len() as u8);
        for nal in pps {
            push_nal(&mut out, nal);
        }
        if has_extension(self.profile_idc) {
            out.push(0xfc | (self.chroma_format_idc.unwrap_or(1) & 3));
            out.push(0xf8 | (self.bit_depth_luma.unwrap_or(8).wrapping_sub(8) & 7));
            out.push(0xf8 | (self.bit_depth_chroma.unwrap_or(8).wrapping_sub(8) & 7));
            out.push(0); // numOfSequenceParameterSetExt
        }
        out
    }

    /// Parse a record. The high-profile extension is optional (many writers omit it).
    pub fn parse(data: &[u8]) -> Result<Self, H264Error> {
        let mut r = Reader { data, pos: 0 };
        let version = r.u8("configurationVersion")?;
        if version != 1 {
            return Err(H264Error::AvccVersion(version));
        }
        let profile_idc = r.u8("AVCProfileIndication")?;
        let profile_compatibility = r.u8("profile_compatibility")?;
        let level_idc = r.u8("AVCLevelIndication")?;
        let length_size_minus_one = r.u8("lengthSizeMinusOne")? & 3;
        if length_size_minus_one == 2 {
            return Err(H264Error::AvccLengthSizeMinusOne(length_size_minus_one));
        }
        let num_sps = r.u8("numOfSequenceParameterSets")? & 0x1f;
        let sps = (0..num_sps)
            .map(|_| r.nal("sequenceParameterSetNALUnit"))
            .collect::<Result<Vec<_>, _>>()?;
        let num_pps = r.u8("numOfPictureParameterSets")?;
        let pps = (0..num_pps)
            .map(|_| r.nal("pictureParameterSetNALUnit"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut config = AvcDecoderConfig {
            profile_idc,
            profile_compatibility,
            level_idc,
            length_size: length_size_minus_one + 1,
            sps,
            pps,
            chroma_format_idc: None,
            bit_depth_luma: None,
            bit_depth_chroma: None,
        };
        if has_extension(profile_idc) && r.pos < data.len() {
            config.chroma_format_idc = Some(r.u8("chroma_format")? & 3);
            config.bit_depth_luma = Some((r.u8("bit_depth_luma_minus8")? & 7) + 8);
            config.bit_depth_chroma = Some((r.u8("bit_depth_chroma_minus8")? & 7) + 8);
            let num_ext = r.u8("numOfSequenceParameterSetExt")?;
            for _ in 0..num_ext {
                r.nal("sequenceParameterSetExtNALUnit")?;
            }
        }
        Ok(config)
    }

    /// The parameter sets as one Annex B chunk (all SPS, then all PPS; 4-byte start codes).
    pub fn parameter_sets_annexb(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_annexb(self.sps.iter().chain(&self.pps).map(|n| &n[..]), &mut out);
        out
    }
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    let nal = &nal[..nal.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
    out.extend_from_slice(nal);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], H264Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(H264Error::AvccTruncated {
                what,
                needed: n,
                offset: self.pos,
                len: self.data.len(),
            });
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, H264Error> {
        Ok(self.take(what, 1)?[0])
    }

    fn nal(&mut self, what: &'static str) -> Result<Vec<u8>, H264Error> {
        let len = self.take(what, 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        Ok(self.take(what, len)?.to_vec())
    }
}
