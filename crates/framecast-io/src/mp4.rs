//! A fast-start MP4 (ISO/IEC 14496-12/-15) writer for one H.264 video track.
//!
//! Why the boxes are written by hand rather than with the `mp4` crate: that crate's writer puts
//! `moov` after `mdat`, and fast start (`moov` first, so a browser can play while downloading)
//! is mandatory here. Reusing only its box structs would still leave us to compute the layout
//! and chunk offsets, which is most of the work; the dozen boxes one AVC track needs are ~250
//! lines with no dependency, and ffprobe/ffmpeg check the result in the tests.
//!
//! Layout: `ftyp`, `moov` (one `trak`, one sample per chunk), `mdat`. Sample bytes are streamed
//! to a hidden scratch file next to the output while encoding, so a long encode never sits in
//! RAM; [`Mp4Writer::finish`] writes `ftyp` and `moov` (whose size is known by then) into an
//! [`AtomicFile`], copies the samples after them and commits.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::atomic::ScratchFile;
use crate::{AtomicFile, IoError};

/// What an [`Mp4Writer`] needs to know about the track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Config {
    /// Display width in pixels (after SPS cropping).
    pub width: u32,
    /// Display height in pixels.
    pub height: u32,
    /// Ticks per second of `pts_ticks`/`duration_ticks` (90000 is customary).
    pub timescale: u32,
    /// The AVCDecoderConfigurationRecord (`avcC` payload: version 1, profile, level, SPS, PPS).
    /// May be empty here and supplied later with [`Mp4Writer::set_avcc`].
    pub avcc: Vec<u8>,
    /// `(colour_primaries, transfer_characteristics, matrix_coefficients, full_range)` as H.264
    /// VUI / ISO 23091-2 code points; written as an `nclx` `colr` box when given.
    pub color: Option<(u8, u8, u8, bool)>,
}

/// What [`Mp4Writer::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4Summary {
    /// Samples (frames) in the track.
    pub frames: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Track duration.
    pub duration: Duration,
}

#[derive(Debug)]
struct Sample {
    size: u32,
    /// Decode time, ticks.
    dts: u64,
    /// Composition offset: pts - dts (0 without B-frames).
    cts: u32,
    keyframe: bool,
}

/// Writes H.264 samples (AVCC: 4-byte length-prefixed NAL units) into a fast-start `.mp4`.
///
/// Sample timing: the decode-time delta of each sample is the difference between its decode
/// time and the next sample's, and the last sample lasts its `duration_ticks`; so decode times
/// must strictly increase. Without B-frames decode time is presentation time
/// ([`Self::write_sample`]); with them ([`Self::write_sample_at`]) each sample's pts - dts goes
/// into a `ctts` box and an edit list starts the presentation at the first picture shown. The
/// track starts at time 0 whatever the first time is.
#[derive(Debug)]
pub struct Mp4Writer {
    path: PathBuf,
    out: AtomicFile,
    scratch: ScratchFile,
    scratch_writer: BufWriter<std::fs::File>,
    config: Mp4Config,
    samples: Vec<Sample>,
    last_duration: u32,
    mdat_bytes: u64,
}

impl Mp4Writer {
    /// Starts writing `path`: creates the output's temporary file and the sample scratch file
    /// next to it (so an unwritable directory fails here, not after the encode).
    pub fn create(path: impl AsRef<Path>, config: Mp4Config) -> Result<Self, IoError> {
        let path = path.as_ref().to_owned();
        let bad = |reason: String| IoError::Mp4 {
            path: path.clone(),
            reason,
        };
        if config.width == 0 || config.height == 0 || config.width > 65535 || config.height > 65535
        {
            return Err(bad(format!(
                "video size {}x{} is invalid: width and height must be 1 to 65535",
                config.width, config.height
            )));
        }
        if config.timescale == 0 {
            return Err(bad("timescale 0 is invalid: use e.g. 90000".into()));
        }
        if !config.avcc.is_empty() {
            check_avcc(&config.avcc).map_err(bad)?;
        }
        let out = AtomicFile::create(&path)?;
        let scratch = ScratchFile::create_for(&path)?;
        let clone = scratch.file.try_clone().map_err(|source| IoError::Write {
            path: scratch.path.clone(),
            action: "open",
            source,
        })?;
        Ok(Mp4Writer {
            path,
            out,
            scratch,
            scratch_writer: BufWriter::with_capacity(1 << 20, clone),
            config,
            samples: Vec::new(),
            last_duration: 0,
            mdat_bytes: 0,
        })
    }

    /// Sets (or replaces) the AVCDecoderConfigurationRecord; allowed until [`Self::finish`].
    pub fn set_avcc(&mut self, avcc: Vec<u8>) -> Result<(), IoError> {
        check_avcc(&avcc).map_err(|reason| IoError::Mp4 {
            path: self.path.clone(),
            reason,
        })?;
        self.config.avcc = avcc;
        Ok(())
    }

    /// Samples written so far.
    pub fn frames(&self) -> u64 {
        self.samples.len() as u64
    }

    /// Appends one access unit. `data_avcc` is one or more NAL units, each preceded by its
    /// length as a 4-byte big-endian integer (not Annex B start codes). Its decode time is its
    /// presentation time (a stream without B-frames).
    pub fn write_sample(
        &mut self,
        data_avcc: &[u8],
        pts_ticks: u64,
        duration_ticks: u32,
        keyframe: bool,
    ) -> Result<(), IoError> {
        self.write_sample_at(data_avcc, pts_ticks, pts_ticks, duration_ticks, keyframe)
    }

    /// Appends one access unit of a stream with B-frames, in decode order: `dts_ticks` strictly
    /// increasing, `pts_ticks` no earlier than it.
    pub fn write_sample_at(
        &mut self,
        data_avcc: &[u8],
        dts_ticks: u64,
        pts_ticks: u64,
        duration_ticks: u32,
        keyframe: bool,
    ) -> Result<(), IoError> {
        let index = self.samples.len();
        let bad = |reason: String| IoError::Mp4 {
            path: self.path.clone(),
            reason,
        };
        check_length_prefixed(data_avcc).map_err(|r| {
            bad(format!(
                "sample {index} is not 4-byte length-prefixed NAL units: {r}"
            ))
        })?;
        let size = u32::try_from(data_avcc.len())
            .map_err(|_| bad(format!("sample {index} is larger than 4 GiB")))?;
        let cts = pts_ticks
            .checked_sub(dts_ticks)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| {
                bad(format!(
                    "sample {index} has pts {pts_ticks} before its dts {dts_ticks} (or too far after)"
                ))
            })?;
        if let Some(prev) = self.samples.last() {
            if dts_ticks <= prev.dts {
                return Err(bad(format!(
                    "sample {index} has decode time {dts_ticks}, not after the previous sample's {}: \
                     decode times must strictly increase",
                    prev.dts
                )));
            }
            if dts_ticks - prev.dts > u32::MAX as u64 {
                return Err(bad(format!(
                    "sample {index} comes {} ticks after the previous one, more than an MP4 \
                     sample delta can hold",
                    dts_ticks - prev.dts
                )));
            }
        }
        self.scratch_writer
            .write_all(data_avcc)
            .map_err(|source| IoError::Write {
                path: self.scratch.path.clone(),
                action: "write",
                source,
            })?;
        self.samples.push(Sample {
            size,
            dts: dts_ticks,
            cts,
            keyframe,
        });
        self.last_duration = duration_ticks;
        self.mdat_bytes += size as u64;
        Ok(())
    }

    /// Writes `ftyp`, `moov` and `mdat` and commits the file. Fails (leaving nothing behind)
    /// when no sample was written or no avcC was set.
    pub fn finish(mut self) -> Result<Mp4Summary, IoError> {
        let bad = |reason: &str| IoError::Mp4 {
            path: self.path.clone(),
            reason: reason.to_owned(),
        };
        if self.samples.is_empty() {
            return Err(bad(
                "no samples were written; refusing to write an MP4 with no frames",
            ));
        }
        if self.config.avcc.is_empty() {
            return Err(bad(
                "no avcC (AVCDecoderConfigurationRecord) was set: pass it in Mp4Config or call \
                 set_avcc before finish",
            ));
        }
        let deltas = self.deltas();
        let duration: u64 = deltas.iter().map(|&d| d as u64).sum();

        let ftyp = ftyp();
        let large_mdat = self.mdat_bytes + 8 > u32::MAX as u64;
        let mdat_header_len = if large_mdat { 16 } else { 8 };
        let moov_len = self.moov(&deltas, duration, 0, false).len() as u64;
        let data_start = ftyp.len() as u64 + moov_len + mdat_header_len;
        let co64 = data_start + self.mdat_bytes > u32::MAX as u64;
        let moov = if co64 {
            // co64 entries are larger, which moves the data further; recompute the start.
            let moov_len = self.moov(&deltas, duration, 0, true).len() as u64;
            self.moov(
                &deltas,
                duration,
                ftyp.len() as u64 + moov_len + mdat_header_len,
                true,
            )
        } else {
            self.moov(&deltas, duration, data_start, false)
        };

        self.out.write_all(&ftyp)?;
        self.out.write_all(&moov)?;
        if large_mdat {
            let mut h = Vec::with_capacity(16);
            h.extend_from_slice(&1u32.to_be_bytes());
            h.extend_from_slice(b"mdat");
            h.extend_from_slice(&(self.mdat_bytes + 16).to_be_bytes());
            self.out.write_all(&h)?;
        } else {
            let mut h = Vec::with_capacity(8);
            h.extend_from_slice(&((self.mdat_bytes + 8) as u32).to_be_bytes());
            h.extend_from_slice(b"mdat");
            self.out.write_all(&h)?;
        }
        let scratch_path = self.scratch.path.clone();
        let scratch_err = |action| {
            let path = scratch_path.clone();
            move |source| IoError::Write {
                path,
                action,
                source,
            }
        };
        self.scratch_writer.flush().map_err(scratch_err("write"))?;
        self.scratch
            .file
            .seek(SeekFrom::Start(0))
            .map_err(scratch_err("seek"))?;
        let copied = std::io::copy(&mut self.scratch.file, &mut self.out).map_err(|source| {
            IoError::Write {
                path: self.out.temp_path().to_owned(),
                action: "copy samples into",
                source,
            }
        })?;
        if copied != self.mdat_bytes {
            return Err(bad(&format!(
                "sample scratch file {} holds {copied} bytes but {} were written to it",
                scratch_path.display(),
                self.mdat_bytes
            )));
        }
        let bytes = self.out.bytes_written();
        let frames = self.samples.len() as u64;
        let timescale = self.config.timescale as u128;
        let nanos = duration as u128 * 1_000_000_000 / timescale;
        self.out.commit()?;
        Ok(Mp4Summary {
            frames,
            bytes,
            duration: Duration::from_nanos(nanos.min(u64::MAX as u128) as u64),
        })
    }

    fn deltas(&self) -> Vec<u32> {
        let mut d: Vec<u32> = self
            .samples
            .windows(2)
            .map(|w| (w[1].dts - w[0].dts) as u32)
            .collect();
        d.push(self.last_duration);
        d
    }

    fn moov(&self, deltas: &[u32], duration: u64, data_start: u64, co64: bool) -> Vec<u8> {
        let c = &self.config;
        let v1 = duration > u32::MAX as u64;
        let mut b = Vec::with_capacity(1024 + self.samples.len() * 16);
        let moov = begin(&mut b, b"moov");

        // mvhd
        let p = full(&mut b, b"mvhd", v1 as u8, 0);
        times(&mut b, v1, c.timescale, duration);
        b.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
        b.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
        b.extend_from_slice(&[0; 10]); // reserved
        matrix(&mut b);
        b.extend_from_slice(&[0; 24]); // pre_defined
        b.extend_from_slice(&2u32.to_be_bytes()); // next_track_ID
        end(&mut b, p);

        let trak = begin(&mut b, b"trak");
        // tkhd: enabled | in movie
        let p = full(&mut b, b"tkhd", v1 as u8, 3);
        if v1 {
            b.extend_from_slice(&[0; 16]);
        } else {
            b.extend_from_slice(&[0; 8]);
        }
        b.extend_from_slice(&1u32.to_be_bytes()); // track_ID
        b.extend_from_slice(&[0; 4]);
        if v1 {
            b.extend_from_slice(&duration.to_be_bytes());
        } else {
            b.extend_from_slice(&(duration as u32).to_be_bytes());
        }
        b.extend_from_slice(&[0; 8]); // reserved
        b.extend_from_slice(&[0; 4]); // layer, alternate_group
        b.extend_from_slice(&[0; 4]); // volume 0 (video), reserved
        matrix(&mut b);
        b.extend_from_slice(&(c.width << 16).to_be_bytes());
        b.extend_from_slice(&(c.height << 16).to_be_bytes());
        end(&mut b, p);

        // With B-frames the first picture shown is composed after the first decode time: an
        // edit list starts the presentation there (as FFmpeg writes it), so pts 0 is shown at 0.
        // Media time counts from the first sample's decode time.
        let origin = self.samples.first().map_or(0, |s| s.dts);
        let first_shown = self
            .samples
            .iter()
            .map(|s| s.dts - origin + s.cts as u64)
            .min();
        if let Some(start) = first_shown.filter(|&t| t > 0) {
            let edts = begin(&mut b, b"edts");
            let wide = start > u32::MAX as u64 || v1;
            let p = full(&mut b, b"elst", wide as u8, 0);
            b.extend_from_slice(&1u32.to_be_bytes());
            if wide {
                b.extend_from_slice(&duration.to_be_bytes());
                b.extend_from_slice(&start.to_be_bytes());
            } else {
                b.extend_from_slice(&(duration as u32).to_be_bytes());
                b.extend_from_slice(&(start as u32).to_be_bytes());
            }
            b.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // media_rate 1.0
            end(&mut b, p);
            end(&mut b, edts);
        }

        let mdia = begin(&mut b, b"mdia");
        let p = full(&mut b, b"mdhd", v1 as u8, 0);
        times(&mut b, v1, c.timescale, duration);
        b.extend_from_slice(&0x55C4u16.to_be_bytes()); // language "und"
        b.extend_from_slice(&[0; 2]);
        end(&mut b, p);

        let p = full(&mut b, b"hdlr", 0, 0);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(b"vide");
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(b"VideoHandler\0");
        end(&mut b, p);

        let minf = begin(&mut b, b"minf");
        let p = full(&mut b, b"vmhd", 0, 1);
        b.extend_from_slice(&[0; 8]); // graphicsmode, opcolor
        end(&mut b, p);
        let dinf = begin(&mut b, b"dinf");
        let dref = full(&mut b, b"dref", 0, 0);
        b.extend_from_slice(&1u32.to_be_bytes());
        let url = full(&mut b, b"url ", 0, 1); // self-contained
        end(&mut b, url);
        end(&mut b, dref);
        end(&mut b, dinf);

        let stbl = begin(&mut b, b"stbl");
        self.stsd(&mut b);

        let p = full(&mut b, b"stts", 0, 0);
        let count_at = b.len();
        b.extend_from_slice(&[0; 4]);
        let mut entries = 0u32;
        let mut i = 0;
        while i < deltas.len() {
            let run = deltas[i..].iter().take_while(|&&d| d == deltas[i]).count();
            b.extend_from_slice(&(run as u32).to_be_bytes());
            b.extend_from_slice(&deltas[i].to_be_bytes());
            entries += 1;
            i += run;
        }
        b[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
        end(&mut b, p);

        if self.samples.iter().any(|s| s.cts != 0) {
            let p = full(&mut b, b"ctts", 0, 0);
            let count_at = b.len();
            b.extend_from_slice(&[0; 4]);
            let mut entries = 0u32;
            let mut i = 0;
            while i < self.samples.len() {
                let cts = self.samples[i].cts;
                let run = self.samples[i..]
                    .iter()
                    .take_while(|s| s.cts == cts)
                    .count();
                b.extend_from_slice(&(run as u32).to_be_bytes());
                b.extend_from_slice(&cts.to_be_bytes());
                entries += 1;
                i += run;
            }
            b[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
            end(&mut b, p);
        }

        let p = full(&mut b, b"stss", 0, 0);
        let keys: Vec<u32> = (1..)
            .zip(&self.samples)
            .filter(|(_, s)| s.keyframe)
            .map(|(n, _)| n)
            .collect();
        b.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for k in keys {
            b.extend_from_slice(&k.to_be_bytes());
        }
        end(&mut b, p);

        // One sample per chunk: one stsc entry, and chunk offsets are sample offsets.
        let p = full(&mut b, b"stsc", 0, 0);
        for v in [1u32, 1, 1, 1] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        end(&mut b, p);

        let p = full(&mut b, b"stsz", 0, 0);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&(self.samples.len() as u32).to_be_bytes());
        for s in &self.samples {
            b.extend_from_slice(&s.size.to_be_bytes());
        }
        end(&mut b, p);

        let p = full(&mut b, if co64 { b"co64" } else { b"stco" }, 0, 0);
        b.extend_from_slice(&(self.samples.len() as u32).to_be_bytes());
        let mut offset = data_start;
        for s in &self.samples {
            if co64 {
                b.extend_from_slice(&offset.to_be_bytes());
            } else {
                b.extend_from_slice(&(offset as u32).to_be_bytes());
            }
            offset += s.size as u64;
        }
        end(&mut b, p);

        end(&mut b, stbl);
        end(&mut b, minf);
        end(&mut b, mdia);
        end(&mut b, trak);
        end(&mut b, moov);
        b
    }

    fn stsd(&self, b: &mut Vec<u8>) {
        let c = &self.config;
        let stsd = full(b, b"stsd", 0, 0);
        b.extend_from_slice(&1u32.to_be_bytes());
        let avc1 = begin(b, b"avc1");
        b.extend_from_slice(&[0; 6]); // reserved
        b.extend_from_slice(&1u16.to_be_bytes()); // data_reference_index
        b.extend_from_slice(&[0; 16]); // pre_defined, reserved

        // The sample entry carries the size the SPS crops to. For 4:2:0 the crop step is 2, so
        // an odd display size is coded one larger; tkhd keeps the exact display size.
        b.extend_from_slice(&(c.width.div_ceil(2) * 2).min(65535).to_be_bytes()[2..]);
        b.extend_from_slice(&(c.height.div_ceil(2) * 2).min(65535).to_be_bytes()[2..]);
        b.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi
        b.extend_from_slice(&0x0048_0000u32.to_be_bytes());
        b.extend_from_slice(&[0; 4]); // reserved
        b.extend_from_slice(&1u16.to_be_bytes()); // frame_count
        b.extend_from_slice(&[0; 32]); // compressorname (empty)
        b.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
        b.extend_from_slice(&0xFFFFu16.to_be_bytes()); // pre_defined = -1
        let p = begin(b, b"avcC");
        b.extend_from_slice(&c.avcc);
        end(b, p);
        if let Some((primaries, transfer, matrix, full_range)) = c.color {
            let p = begin(b, b"colr");
            b.extend_from_slice(b"nclx");
            b.extend_from_slice(&(primaries as u16).to_be_bytes());
            b.extend_from_slice(&(transfer as u16).to_be_bytes());
            b.extend_from_slice(&(matrix as u16).to_be_bytes());
            b.push(if full_range { 0x80 } else { 0 });
            end(b, p);
        }
        let p = begin(b, b"pasp");
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        end(b, p);
        end(b, avc1);
        end(b, stsd);
    }
}

fn ftyp() -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    let p = begin(&mut b, b"ftyp");
    b.extend_from_slice(b"isom");
    b.extend_from_slice(&0x200u32.to_be_bytes());
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        b.extend_from_slice(brand);
    }
    end(&mut b, p);
    b
}

/// Starts a box; returns its offset for [`end`].
fn begin(b: &mut Vec<u8>, kind: &[u8; 4]) -> usize {
    let p = b.len();
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(kind);
    p
}

/// Starts a full box (version and flags).
fn full(b: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32) -> usize {
    let p = begin(b, kind);
    b.extend_from_slice(&((version as u32) << 24 | flags).to_be_bytes());
    p
}

/// Patches the size of the box started at `p`.
fn end(b: &mut [u8], p: usize) {
    let size = (b.len() - p) as u32;
    b[p..p + 4].copy_from_slice(&size.to_be_bytes());
}

/// creation and modification times (0: deterministic output), timescale and duration.
fn times(b: &mut Vec<u8>, v1: bool, timescale: u32, duration: u64) {
    if v1 {
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&duration.to_be_bytes());
    } else {
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&(duration as u32).to_be_bytes());
    }
}

fn matrix(b: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.extend_from_slice(&v.to_be_bytes());
    }
}

fn check_avcc(avcc: &[u8]) -> Result<(), String> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return Err(format!(
            "avcC of {} bytes starting {:02x?} is not an AVCDecoderConfigurationRecord \
             (version 1, profile, compatibility, level, length size, SPS, PPS)",
            avcc.len(),
            &avcc[..avcc.len().min(8)]
        ));
    }
    Ok(())
}

fn check_length_prefixed(data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("it is empty".into());
    }
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(len) = data.get(pos..pos + 4) else {
            return Err(format!("{} stray bytes at the end", data.len() - pos));
        };
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        if len == 0 || pos + 4 + len > data.len() {
            return Err(format!(
                "NAL length {len} at byte {pos} does not fit the {} sample bytes (Annex B \
                 start codes must be converted to lengths first)",
                data.len()
            ));
        }
        pos += 4 + len;
    }
    Ok(())
}
