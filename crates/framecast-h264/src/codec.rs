//! RFC 6381 codec strings (`avc1.PPCCLL`) as WebCodecs and MSE expect them.

use crate::H264Error;

/// The RFC 6381 codec string of an SPS NAL unit: `avc1.` followed by profile_idc, the constraint
/// flags byte and level_idc as upper-case hex, the way browsers print them (e.g. `avc1.42C01F`).
pub fn codec_string(sps_nal: &[u8]) -> Result<String, H264Error> {
    let info = crate::sps::parse_sps(sps_nal)?;
    Ok(codec_string_from_parts(
        info.profile_idc,
        info.constraint_flags,
        info.level_idc,
    ))
}

/// `avc1.PPCCLL` from its three parts.
///
/// ```
/// assert_eq!(framecast_h264::codec::codec_string_from_parts(0x64, 0, 0x28), "avc1.640028");
/// ```
pub fn codec_string_from_parts(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02X}{constraint_flags:02X}{level_idc:02X}")
}
