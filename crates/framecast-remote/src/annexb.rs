//! Splitting an Annex B elementary stream into access units (one PACKET each), and the
//! parameter sets a decode-mode CONFIGURE needs as extradata.

/// Split an Annex B stream into access units, each re-emitted with 4-byte start codes. A new
/// unit starts at an AUD, SPS, PPS or SEI after a slice, or at a slice whose
/// `first_mb_in_slice` is 0.
pub fn access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut has_vcl = false;
    for nal in framecast_h264::nal::annexb_nals(data) {
        let t = nal[0] & 0x1f;
        let is_vcl = (1..=5).contains(&t);
        let first_slice = is_vcl && nal.len() > 1 && nal[1] & 0x80 != 0;
        if has_vcl && (matches!(t, 6..=9) || first_slice) {
            out.push(std::mem::take(&mut cur));
            has_vcl = false;
        }
        cur.extend_from_slice(&[0, 0, 0, 1]);
        cur.extend_from_slice(nal);
        has_vcl |= is_vcl;
    }
    if has_vcl {
        out.push(cur);
    }
    out
}

/// Whether `au` holds an IDR slice (a PACKET's key flag, as FFmpeg sets AV_PKT_FLAG_KEY).
pub fn is_idr(au: &[u8]) -> bool {
    framecast_h264::nal::annexb_nals(au).any(|nal| {
        framecast_h264::nal::nal_type(nal) == Some(framecast_h264::nal::NalType::IdrSlice)
    })
}

/// The first SPS and PPS of `au`, as Annex B (the extradata of a decode-mode CONFIGURE), and
/// the SPS's display size.
pub fn parameter_sets(au: &[u8]) -> Option<(Vec<u8>, (u32, u32))> {
    let mut sps = None;
    let mut pps = None;
    for nal in framecast_h264::nal::annexb_nals(au) {
        match nal[0] & 0x1f {
            7 if sps.is_none() => sps = Some(nal),
            8 if pps.is_none() => pps = Some(nal),
            _ => {}
        }
    }
    let (sps, pps) = (sps?, pps?);
    let info = framecast_h264::sps::parse_sps(sps).ok()?;
    let mut extradata = Vec::new();
    for n in [sps, pps] {
        extradata.extend_from_slice(&[0, 0, 0, 1]);
        extradata.extend_from_slice(n);
    }
    Some((extradata, (info.width, info.height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_first_slice_and_parameter_sets() {
        let stream = [
            &[0, 0, 0, 1, 0x67, 0x42][..], // SPS
            &[0, 0, 1, 0x68, 0xce],        // PPS
            &[0, 0, 1, 0x65, 0x88, 0x80],  // IDR, first_mb 0
            &[0, 0, 1, 0x65, 0x48, 0x80],  // IDR, second slice (first_mb != 0)
            &[0, 0, 1, 0x41, 0x9a],        // P, first_mb 0
            &[0, 0, 1, 0x09, 0x10],        // AUD
            &[0, 0, 1, 0x41, 0x9b],        // P
        ]
        .concat();
        let aus = access_units(&stream);
        assert_eq!(aus.len(), 3);
        assert_eq!(aus[0].len(), 4 * 4 + 2 + 2 + 3 + 3);
        assert!(aus[2].starts_with(&[0, 0, 0, 1, 0x09]));
        assert_eq!(
            aus.iter().map(|au| is_idr(au)).collect::<Vec<_>>(),
            [true, false, false]
        );
    }
}
