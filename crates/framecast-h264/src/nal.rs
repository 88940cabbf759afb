//! NAL units: types, Annex B and AVCC (length-prefixed) framing, and conversion between them.

use crate::H264Error;

/// NAL unit type (`nal_unit_type`, 5 bits; H.264 Table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NalType {
    /// 1: coded slice of a non-IDR picture.
    NonIdrSlice,
    /// 2: coded slice data partition A.
    PartitionA,
    /// 3: coded slice data partition B.
    PartitionB,
    /// 4: coded slice data partition C.
    PartitionC,
    /// 5: coded slice of an IDR picture.
    IdrSlice,
    /// 6: supplemental enhancement information.
    Sei,
    /// 7: sequence parameter set.
    Sps,
    /// 8: picture parameter set.
    Pps,
    /// 9: access unit delimiter.
    Aud,
    /// 10: end of sequence.
    EndOfSequence,
    /// 11: end of stream.
    EndOfStream,
    /// 12: filler data.
    Filler,
    /// Any other value (0, 13..=31), as coded.
    Other(u8),
}

impl NalType {
    /// The type coded in a NAL header byte (its low 5 bits).
    pub fn from_header(byte: u8) -> NalType {
        match byte & 0x1f {
            1 => NalType::NonIdrSlice,
            2 => NalType::PartitionA,
            3 => NalType::PartitionB,
            4 => NalType::PartitionC,
            5 => NalType::IdrSlice,
            6 => NalType::Sei,
            7 => NalType::Sps,
            8 => NalType::Pps,
            9 => NalType::Aud,
            10 => NalType::EndOfSequence,
            11 => NalType::EndOfStream,
            12 => NalType::Filler,
            other => NalType::Other(other),
        }
    }

    /// The numeric `nal_unit_type`.
    pub fn to_u8(self) -> u8 {
        match self {
            NalType::NonIdrSlice => 1,
            NalType::PartitionA => 2,
            NalType::PartitionB => 3,
            NalType::PartitionC => 4,
            NalType::IdrSlice => 5,
            NalType::Sei => 6,
            NalType::Sps => 7,
            NalType::Pps => 8,
            NalType::Aud => 9,
            NalType::EndOfSequence => 10,
            NalType::EndOfStream => 11,
            NalType::Filler => 12,
            NalType::Other(v) => v & 0x1f,
        }
    }

    /// Whether this is a VCL NAL unit (coded slice data, types 1..=5).
    pub fn is_vcl(self) -> bool {
        matches!(
            self,
            NalType::NonIdrSlice
                | NalType::PartitionA
                | NalType::PartitionB
                | NalType::PartitionC
                | NalType::IdrSlice
        )
    }
}

/// The type of a NAL unit whose first byte is the NAL header. An empty slice gives `None`.
pub fn nal_type(nal: &[u8]) -> Option<NalType> {
    nal.first().map(|&b| NalType::from_header(b))
}

/// Position of the next `00 00 01` start code at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Look at the third byte first: a start code needs a 1 there; skip ahead otherwise.
        let b2 = data[i + 2];
        if b2 > 1 {
            i += 3;
        } else if b2 == 1 && data[i] == 0 && data[i + 1] == 0 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// Iterator over the NAL units of an Annex B byte stream; see [`annexb_nals`].
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    data: &'a [u8],
    /// Start of the next NAL payload, or `None` when done.
    next: Option<usize>,
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let (end, following) = match find_start_code(self.data, start) {
                Some(sc) => (sc, Some(sc + 3)),
                None => (self.data.len(), None),
            };
            self.next = following;
            let mut nal = &self.data[start..end];
            // trailing_zero_8bits and the zero_byte of a following 4-byte start code.
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// Iterate the NAL units of an Annex B byte stream (H.264 Annex B).
///
/// Handles 3- and 4-byte start codes, leading zero bytes and trailing_zero_8bits (trailing zero
/// bytes of every NAL are trimmed: a NAL unit never ends in 0x00). Yields NAL units including the
/// header byte, without start codes. Data before the first start code is ignored; empty NAL units
/// are skipped.
///
/// ```
/// use framecast_h264::nal::annexb_nals;
/// let stream = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0];
/// let nals: Vec<&[u8]> = annexb_nals(&stream).collect();
/// assert_eq!(nals, [&[0x67, 0x42][..], &[0x68, 0xce][..]]);
/// ```
pub fn annexb_nals(data: &[u8]) -> AnnexBNals<'_> {
    AnnexBNals {
        data,
        next: find_start_code(data, 0).map(|sc| sc + 3),
    }
}

fn check_length_size(length_size: u8) -> Result<(), H264Error> {
    match length_size {
        1 | 2 | 4 => Ok(()),
        other => Err(H264Error::InvalidLengthSize(other)),
    }
}

/// Iterator over length-prefixed NAL units; see [`avcc_nals`].
#[derive(Debug, Clone)]
pub struct AvccNals<'a> {
    data: &'a [u8],
    length_size: u8,
    done: bool,
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8], H264Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = check_length_size(self.length_size) {
            self.done = true;
            return Some(Err(e));
        }
        if self.data.is_empty() {
            self.done = true;
            return None;
        }
        let ls = usize::from(self.length_size);
        if self.data.len() < ls {
            self.done = true;
            return Some(Err(H264Error::TruncatedLengthPrefix {
                needed: ls,
                left: self.data.len(),
            }));
        }
        let len = self.data[..ls]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let rest = &self.data[ls..];
        if len > rest.len() {
            self.done = true;
            return Some(Err(H264Error::NalLengthExceedsData {
                len,
                left: rest.len(),
            }));
        }
        let (nal, tail) = rest.split_at(len);
        self.data = tail;
        Some(Ok(nal))
    }
}

/// Iterate length-prefixed (AVCC / ISO BMFF sample) NAL units; `length_size` is 1, 2 or 4.
///
/// Yields an error (and then stops) for an invalid length size, a truncated length prefix, or a
/// length that points past the end of the data. Zero-length NAL units are yielded as empty slices.
pub fn avcc_nals(data: &[u8], length_size: u8) -> AvccNals<'_> {
    AvccNals {
        data,
        length_size,
        done: false,
    }
}

/// Convert an Annex B byte stream to length-prefixed NAL units.
///
/// Fails when `length_size` is not 1, 2 or 4, or a NAL unit is too long for it.
pub fn annexb_to_avcc(data: &[u8], length_size: u8) -> Result<Vec<u8>, H264Error> {
    check_length_size(length_size)?;
    let max = match length_size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff_u64,
    };
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in annexb_nals(data) {
        if nal.len() as u64 > max {
            return Err(H264Error::NalTooLongForLengthSize {
                len: nal.len(),
                length_size,
            });
        }
        let len = (nal.len() as u64).to_be_bytes();
        out.extend_from_slice(&len[8 - usize::from(length_size)..]);
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// Convert length-prefixed NAL units to an Annex B byte stream with 4-byte start codes.
///
/// Empty NAL units are dropped (Annex B cannot represent them).
pub fn avcc_to_annexb(data: &[u8], length_size: u8) -> Result<Vec<u8>, H264Error> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in avcc_nals(data, length_size) {
        let nal = nal?;
        if !nal.is_empty() {
            write_annexb([nal], &mut out);
        }
    }
    Ok(out)
}

/// Append NAL units to `out` as Annex B with 4-byte start codes (`00 00 00 01`).
pub fn write_annexb<'a>(nals: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_code_search_with_skips() {
        assert_eq!(find_start_code(&[0, 0, 1], 0), Some(0));
        assert_eq!(find_start_code(&[9, 9, 9, 0, 0, 1], 0), Some(3));
        assert_eq!(find_start_code(&[0, 0, 0, 1], 0), Some(1));
        assert_eq!(find_start_code(&[1, 0, 0, 2, 0, 0, 1], 0), Some(4));
        assert_eq!(find_start_code(&[0, 0, 1], 1), None);
        assert_eq!(find_start_code(&[0, 1, 0, 0], 0), None);
    }

    #[test]
    fn check_length_sizes() {
        for ls in 0..=8u8 {
            assert_eq!(check_length_size(ls).is_ok(), matches!(ls, 1 | 2 | 4));
        }
    }
}
