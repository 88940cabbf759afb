//! Emulation prevention (EBSP <-> RBSP, H.264 7.4.1) and bit-level reading and writing
//! (fixed-width fields, exp-Golomb `ue(v)`/`se(v)`, `rbsp_trailing_bits`).

use std::borrow::Cow;

use crate::H264Error;

/// Remove emulation-prevention bytes: every `00 00 03` becomes `00 00` (H.264 7.4.1).
///
/// Returns the input borrowed when it contains no emulation-prevention byte.
///
/// ```
/// use framecast_h264::rbsp::ebsp_to_rbsp;
/// assert_eq!(&*ebsp_to_rbsp(&[0x12, 0, 0, 3, 1, 0, 0, 3]), &[0x12, 0, 0, 1, 0, 0]);
/// ```
pub fn ebsp_to_rbsp(ebsp: &[u8]) -> Cow<'_, [u8]> {
    let first = match find_escape(ebsp, 0) {
        Some(i) => i,
        None => return Cow::Borrowed(ebsp),
    };
    let mut out = Vec::with_capacity(ebsp.len());
    let mut from = 0;
    let mut at = Some(first);
    while let Some(i) = at {
        // ebsp[i] is the 0x03 to drop.
        out.extend_from_slice(&ebsp[from..i]);
        from = i + 1;
        // The two zeros before this 0x03 were consumed; the next escape needs two new zeros.
        at = find_escape(ebsp, i + 1);
    }
    out.extend_from_slice(&ebsp[from..]);
    Cow::Owned(out)
}

/// Index of the next emulation-prevention 0x03 (preceded by two zeros that are not themselves
/// part of an earlier escape) at or after `from`.
fn find_escape(data: &[u8], from: usize) -> Option<usize> {
    let mut zeros = 0;
    for (i, &b) in data.iter().enumerate().skip(from) {
        if zeros >= 2 && b == 3 {
            return Some(i);
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    None
}

/// Insert emulation-prevention bytes so that the output never contains `00 00 00`,
/// `00 00 01`, `00 00 02`, or an un-escaped `00 00 03` (H.264 7.4.1).
///
/// When the RBSP ends in `00 00` (only possible with `cabac_zero_word`s), a final `0x03` is
/// appended as 7.4.1 requires, so that Annex B framing cannot swallow the zeros. A valid RBSP
/// otherwise ends with the `rbsp_stop_one_bit`, so its last byte is never zero.
///
/// ```
/// use framecast_h264::rbsp::rbsp_to_ebsp;
/// assert_eq!(rbsp_to_ebsp(&[0x12, 0, 0, 1, 0, 0]), [0x12, 0, 0, 3, 1, 0, 0, 3]);
/// ```
pub fn rbsp_to_ebsp(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 2);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros == 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if zeros == 2 {
        out.push(3);
    }
    out
}

/// Writes an RBSP bit by bit, most significant bit first.
///
/// ```
/// use framecast_h264::rbsp::BitWriter;
/// let mut w = BitWriter::new();
/// w.write_bits(0x42, 8);
/// w.write_ue(0); // "1"
/// w.write_se(-1); // "011"
/// w.write_rbsp_trailing_bits(); // "1" then zero bits to the byte boundary
/// assert_eq!(w.into_bytes(), [0x42, 0b1011_1000]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits already used in the last byte of `bytes` (0 = byte aligned).
    used: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write one bit.
    pub fn write_flag(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 0x80 >> self.used;
            }
        }
        self.used = (self.used + 1) % 8;
    }

    /// Write the low `count` bits of `value` (`u(n)`), most significant first; `count` <= 64.
    pub fn write_bits(&mut self, value: u64, count: u32) {
        debug_assert!(count <= 64, "write_bits count {count} > 64");
        for i in (0..count.min(64)).rev() {
            self.write_flag((value >> i) & 1 == 1);
        }
    }

    /// Write an unsigned exp-Golomb code (`ue(v)`, H.264 9.1). Every `u32` is representable.
    pub fn write_ue(&mut self, value: u32) {
        let code = u64::from(value) + 1;
        let len = 64 - code.leading_zeros(); // bits in code
        self.write_bits(0, len - 1);
        self.write_bits(code, len);
    }

    /// Write a signed exp-Golomb code (`se(v)`, H.264 9.1.1). Every `i32` is representable.
    pub fn write_se(&mut self, value: i32) {
        let v = i64::from(value);
        let code = if v > 0 { 2 * v - 1 } else { -2 * v };
        // code <= 2^32, one more than u32::MAX only for i32::MIN: write it directly.
        let code = code as u64 + 1;
        let len = 64 - code.leading_zeros();
        self.write_bits(0, len - 1);
        self.write_bits(code, len);
    }

    /// Write `rbsp_trailing_bits()`: a one bit, then zero bits up to the byte boundary.
    pub fn write_rbsp_trailing_bits(&mut self) {
        self.write_flag(true);
        self.used = 0;
    }

    /// Whether the next bit starts a new byte.
    pub fn is_byte_aligned(&self) -> bool {
        self.used == 0
    }

    /// Number of bits written so far.
    pub fn bit_len(&self) -> usize {
        if self.used == 0 {
            self.bytes.len() * 8
        } else {
            (self.bytes.len() - 1) * 8 + usize::from(self.used)
        }
    }

    /// The bytes written; an unfinished last byte is padded with zero bits.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads an RBSP bit by bit, most significant bit first. Never panics: reading past the end
/// is an [`H264Error::EndOfBitstream`].
///
/// ```
/// use framecast_h264::rbsp::BitReader;
/// let mut r = BitReader::new(&[0x42, 0b1011_1000]);
/// assert_eq!(r.read_bits(8).unwrap(), 0x42);
/// assert_eq!(r.read_ue().unwrap(), 0);
/// assert_eq!(r.read_se().unwrap(), -1);
/// assert!(r.read_flag().unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bit position of the next read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits not yet read.
    pub fn bits_left(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    /// Read one bit.
    pub fn read_flag(&mut self) -> Result<bool, H264Error> {
        if self.pos >= self.data.len() * 8 {
            return Err(self.eof(1));
        }
        let bit = (self.data[self.pos / 8] >> (7 - self.pos % 8)) & 1 == 1;
        self.pos += 1;
        Ok(bit)
    }

    /// Read `count` bits (`u(n)`, `count` <= 32) as an unsigned number.
    pub fn read_bits(&mut self, count: u32) -> Result<u32, H264Error> {
        if count > 32 {
            return Err(H264Error::SpsFieldOutOfRange {
                field: "read_bits count",
                value: count.into(),
                allowed: "0..=32",
            });
        }
        if (count as usize) > self.bits_left() {
            return Err(self.eof(count));
        }
        let mut v = 0u64;
        for _ in 0..count {
            v = (v << 1) | u64::from(self.read_flag()?);
        }
        Ok(v as u32)
    }

    /// Read an unsigned exp-Golomb code (`ue(v)`); values up to `u32::MAX - 1`.
    pub fn read_ue(&mut self) -> Result<u32, H264Error> {
        let start = self.pos;
        let mut zeros = 0u32;
        while !self.read_flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(H264Error::ExpGolombTooLong {
                    position: start,
                    leading_zeros: zeros,
                });
            }
        }
        let suffix = u64::from(self.read_bits(zeros)?);
        Ok(((1u64 << zeros) - 1 + suffix) as u32)
    }

    /// Read a signed exp-Golomb code (`se(v)`).
    pub fn read_se(&mut self) -> Result<i32, H264Error> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }

    /// Whether more RBSP data follows before `rbsp_trailing_bits` (H.264 7.2 `more_rbsp_data()`).
    pub fn more_rbsp_data(&self) -> bool {
        // The last one bit in the data is the stop bit.
        let last_one = self
            .data
            .iter()
            .rposition(|&b| b != 0)
            .map(|i| i * 8 + 7 - self.data[i].trailing_zeros() as usize);
        matches!(last_one, Some(stop) if stop > self.pos)
    }

    fn eof(&self, needed: u32) -> H264Error {
        H264Error::EndOfBitstream {
            needed,
            position: self.pos,
            total: self.data.len() * 8,
        }
    }
}
