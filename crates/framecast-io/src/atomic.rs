//! Files that appear complete or not at all.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::IoError;

/// An output file written to a hidden temporary file next to its final path and renamed into
/// place by [`AtomicFile::commit`], so readers never see a half-written file and a crash or an
/// error leaves the previous file (if any) untouched.
///
/// The temporary file is `<dir>/.<name>.<pid>.tmp` (with a `-N` suffix if that exists); dropping
/// an `AtomicFile` without committing deletes it.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    path: PathBuf,
    written: u64,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `path`. Fails, naming the temporary path and the OS error,
    /// when the directory does not exist or is not writable.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref().to_owned();
        let (file, temp) = create_hidden(&path, "tmp")?;
        Ok(AtomicFile {
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            temp,
            path,
            written: 0,
            committed: false,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary path being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Appends `data`.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), IoError> {
        let file = self.file.as_mut().expect("file is present until commit");
        file.write_all(data).map_err(|source| IoError::Write {
            path: self.temp.clone(),
            action: "write",
            source,
        })?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Flushes, fsyncs and renames the temporary file onto the final path (replacing any file
    /// there), then fsyncs the directory on Unix so the rename itself is durable.
    pub fn commit(mut self) -> Result<(), IoError> {
        let writer = self.file.take().expect("file is present until commit");
        let err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| IoError::Write {
                path,
                action,
                source,
            }
        };
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(err("write", &self.temp))?;
        file.sync_all().map_err(err("fsync", &self.temp))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(err("rename into place", &self.path))?;
        self.committed = true;
        #[cfg(unix)]
        if let Ok(dir) = File::open(parent_dir(&self.path)) {
            // Best effort: some file systems refuse fsync on directories.
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .expect("file is present until commit")
            .write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `<dir>/.<name>.<pid>.<suffix>` (or `...<pid>-N.<suffix>`) exclusively, for reading
/// and writing.
pub(crate) fn create_hidden(path: &Path, suffix: &str) -> Result<(File, PathBuf), IoError> {
    let name = path
        .file_name()
        .ok_or_else(|| {
            IoError::InvalidArgument(format!(
                "output path {} does not name a file",
                path.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let dir = parent_dir(path);
    let pid = std::process::id();
    let mut attempt = 0u32;
    loop {
        let temp = if attempt == 0 {
            dir.join(format!(".{name}.{pid}.{suffix}"))
        } else {
            dir.join(format!(".{name}.{pid}-{attempt}.{suffix}"))
        };
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(source) => {
                // Name the path the user asked for; the hidden temporary name means nothing to them.
                return Err(IoError::Write {
                    path: path.to_owned(),
                    action: "create the output (as a temporary file in the same directory)",
                    source,
                });
            }
        }
    }
}

/// A scratch file removed when dropped (the MP4 writer's sample store).
#[derive(Debug)]
pub(crate) struct ScratchFile {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

impl ScratchFile {
    pub(crate) fn create_for(path: &Path) -> Result<Self, IoError> {
        let (file, path) = create_hidden(path, "mdat.tmp")?;
        Ok(ScratchFile { file, path })
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes an Annex B H.264 elementary stream (`.h264`) atomically.
#[derive(Debug)]
pub struct H264FileWriter {
    file: AtomicFile,
    packets: u64,
}

impl H264FileWriter {
    /// Starts writing `path` (through an [`AtomicFile`]).
    pub fn create(path: impl AsRef<Path>) -> Result<Self, IoError> {
        Ok(H264FileWriter {
            file: AtomicFile::create(path)?,
            packets: 0,
        })
    }

    /// Appends one packet's Annex B bytes exactly as given.
    pub fn write_packet(&mut self, annex_b: &[u8]) -> Result<(), IoError> {
        self.file.write_all(annex_b)?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Commits the file and returns its size in bytes.
    pub fn finish(self) -> Result<u64, IoError> {
        let bytes = self.file.bytes_written();
        self.file.commit()?;
        Ok(bytes)
    }
}
