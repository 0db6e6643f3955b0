//! A spool that writes records as files, and must fail cleanly when the disk is full:
//! no half-written record may be left for a reader to pick up.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a record was not spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// The filesystem is full (ENOSPC); nothing of the record was kept.
    Full,
    /// Any other I/O failure.
    Io(io::Error),
}

/// Records in a directory, each written to a temporary name and renamed when complete.
pub struct Spool {
    dir: PathBuf,
    next: u64,
}

impl Spool {
    /// A spool in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Spool {
        Spool {
            dir: dir.into(),
            next: 0,
        }
    }

    /// Writes one record; on failure nothing of it remains.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Full`] when the disk is full, [`SpoolError::Io`] otherwise.
    pub fn push(&mut self, record: &[u8]) -> Result<PathBuf, SpoolError> {
        let name = format!("{:08}.rec", self.next);
        let partial = self.dir.join(format!(".{name}.partial"));
        let result = write_synced(&partial, record)
            .and_then(|()| fs::rename(&partial, self.dir.join(&name)));
        match result {
            Ok(()) => {
                self.next += 1;
                Ok(self.dir.join(name))
            }
            Err(e) => {
                let _ = fs::remove_file(&partial);
                match e.raw_os_error() {
                    Some(code) if code == nix::errno::Errno::ENOSPC as i32 => Err(SpoolError::Full),
                    _ => Err(SpoolError::Io(e)),
                }
            }
        }
    }

    /// The complete records, oldest first.
    ///
    /// # Errors
    ///
    /// When the directory cannot be read.
    pub fn records(&self) -> io::Result<Vec<PathBuf>> {
        let mut records: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rec"))
            .collect();
        records.sort();
        Ok(records)
    }

    /// Every file in the spool directory, complete or not.
    ///
    /// # Errors
    ///
    /// When the directory cannot be read.
    pub fn all_files(&self) -> io::Result<usize> {
        Ok(fs::read_dir(&self.dir)?.count())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
