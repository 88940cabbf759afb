//! Per-plane wire compression of FRAME data (§8).
//!
//! On the wire each plane is compressed on its own with no size prefix or framing of ours:
//! LZ4 is a raw LZ4 *block* (what `LZ4_compress_default` writes and `LZ4_decompress_safe`
//! reads), Zstd is one Zstd *frame* (what `ZSTD_compress` writes, level 1 by default). The
//! receiver knows the decompressed size from the plane header (stride × height) and requires
//! the output to be exactly that long.

use crate::error::CompressionError;
use bytes::Bytes;

/// `wire_compression` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Compression {
    /// 0: raw planes.
    #[default]
    None,
    /// 1: LZ4 block per plane.
    Lz4,
    /// 2: Zstd frame per plane (level 1 unless set otherwise). Needs the `zstd` feature (on by
    /// default; the C library it wraps cannot be cross-compiled, so cross-checks turn it off).
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Compression {
    /// Every mode this build supports.
    pub const ALL: &'static [Compression] = &[
        Compression::None,
        Compression::Lz4,
        #[cfg(feature = "zstd")]
        Compression::Zstd,
    ];

    /// The option value sent in CONFIGURE.
    pub fn wire_value(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            #[cfg(feature = "zstd")]
            Compression::Zstd => 2,
        }
    }

    /// Parse a `wire_compression` option value. The server accepts only 0, 1 and 2 (3, "auto",
    /// is a client-side setting).
    pub fn from_option(v: &str) -> Result<Self, CompressionError> {
        match v.trim() {
            "0" => Ok(Compression::None),
            "1" => Ok(Compression::Lz4),
            #[cfg(feature = "zstd")]
            "2" => Ok(Compression::Zstd),
            #[cfg(not(feature = "zstd"))]
            "2" => Err(CompressionError::UnknownMode(
                "2 (zstd: this build has no zstd support)".into(),
            )),
            other => Err(CompressionError::UnknownMode(other.to_string())),
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            #[cfg(feature = "zstd")]
            Compression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "0" => Ok(Compression::None),
            "lz4" | "1" => Ok(Compression::Lz4),
            #[cfg(feature = "zstd")]
            "zstd" | "2" => Ok(Compression::Zstd),
            #[cfg(not(feature = "zstd"))]
            "zstd" | "2" => {
                Err("this build has no zstd support (rebuild with the zstd feature)".into())
            }
            other => Err(format!("compression {other:?}: use none, lz4 or zstd")),
        }
    }
}

/// Default Zstd level (the reference's).
pub const ZSTD_LEVEL: i32 = 1;

/// Compress plane `plane` (`data` is exactly stride × height bytes).
#[cfg_attr(not(feature = "zstd"), allow(unused_variables))]
pub fn compress_plane(
    mode: Compression,
    plane: usize,
    data: &[u8],
) -> Result<Bytes, CompressionError> {
    match mode {
        Compression::None => Ok(Bytes::copy_from_slice(data)),
        Compression::Lz4 => Ok(Bytes::from(lz4_flex::block::compress(data))),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL)
            .map(Bytes::from)
            .map_err(|e| CompressionError::Compress {
                codec: "zstd",
                plane,
                detail: e.to_string(),
            }),
    }
}

/// Decompress one plane into `out`, which must be exactly the expected size.
pub fn decompress_plane_into(
    mode: Compression,
    plane: usize,
    data: &[u8],
    out: &mut [u8],
) -> Result<(), CompressionError> {
    let expected = out.len();
    match mode {
        Compression::None => {
            if data.len() < expected {
                return Err(CompressionError::Corrupt {
                    codec: "none",
                    plane,
                    detail: format!("{} bytes, expected at least {expected}", data.len()),
                });
            }
            out.copy_from_slice(&data[..expected]);
            Ok(())
        }
        Compression::Lz4 => {
            let n = lz4_flex::block::decompress_into(data, out).map_err(|e| {
                CompressionError::Corrupt {
                    codec: "lz4",
                    plane,
                    detail: e.to_string(),
                }
            })?;
            if n != expected {
                return Err(CompressionError::Corrupt {
                    codec: "lz4",
                    plane,
                    detail: format!("decompressed to {n} bytes, expected {expected}"),
                });
            }
            Ok(())
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let n = zstd::bulk::decompress_to_buffer(data, out).map_err(|e| {
                CompressionError::Corrupt {
                    codec: "zstd",
                    plane,
                    detail: e.to_string(),
                }
            })?;
            if n != expected {
                return Err(CompressionError::Corrupt {
                    codec: "zstd",
                    plane,
                    detail: format!("decompressed to {n} bytes, expected {expected}"),
                });
            }
            Ok(())
        }
    }
}

/// Decompress one plane of `expected` bytes. Raw planes longer than `expected` are cut.
pub fn decompress_plane(
    mode: Compression,
    plane: usize,
    data: &Bytes,
    expected: usize,
) -> Result<Bytes, CompressionError> {
    if mode == Compression::None {
        if data.len() < expected {
            return Err(CompressionError::Corrupt {
                codec: "none",
                plane,
                detail: format!("{} bytes, expected at least {expected}", data.len()),
            });
        }
        return Ok(data.slice(..expected));
    }
    let mut out = vec![0u8; expected];
    decompress_plane_into(mode, plane, data, &mut out)?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_size_mismatch() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i / 7) as u8).collect();
        for &mode in Compression::ALL {
            let c = compress_plane(mode, 0, &data).unwrap();
            let back = decompress_plane(mode, 0, &c, data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{mode:?}");
            if mode != Compression::None {
                assert!(c.len() < data.len() / 4, "{mode:?} compresses a ramp");
                assert!(decompress_plane(mode, 1, &c, data.len() + 1).is_err());
                assert!(decompress_plane(mode, 1, &c, data.len() - 1).is_err());
                assert!(decompress_plane(mode, 1, &Bytes::from_static(b"junk"), 10).is_err());
            }
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn lz4_is_a_raw_block_and_zstd_a_frame() {
        // A raw LZ4 block, no frame header or size prefix: token 0x40 (4 literals, no match), then them.
        let data = [7u8; 4];
        let c = compress_plane(Compression::Lz4, 0, &data).unwrap();
        assert_eq!(&c[..], &[0x40, 7, 7, 7, 7]);
        let z = compress_plane(Compression::Zstd, 0, &data).unwrap();
        assert_eq!(&z[..4], &[0x28, 0xB5, 0x2F, 0xFD], "zstd frame magic");
    }
}
