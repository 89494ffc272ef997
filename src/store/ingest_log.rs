//! The ingest log: the point where a write becomes durable. The writer appends every
//! request's batch here and `fdatasync`s once per group before it answers, and DuckDB
//! commits the rows later in larger groups of its own. A DuckDB commit has a fixed cost of
//! about 2 ms of CPU whatever its size, so committing there once per group of waiting
//! beacons bounded single-event ingest; an append and a sync here cost a few microseconds of
//! CPU. Each record carries a position; DuckDB stores the last position it committed in the
//! same transaction as the rows (`ingest_log_position`), so a start after a crash replays
//! exactly the records DuckDB does not hold: nothing twice, nothing lost.
//!
//! Files: `<database file>.ingest/<first position>.log`, a new one per start and every
//! `SEGMENT_BYTES`; a file is deleted once DuckDB holds all of its records. A record is
//! `[length u32][crc32 u32][position u64][batch]` (`wire`), the CRC over position and batch:
//! a record torn by a crash fails it and ends the replay of its file (it was never answered).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::rows::Batch;
use super::wire::{Reader, Wire};

/// A new file once the current one is this large, so committed records can be deleted.
const SEGMENT_BYTES: u64 = 16 << 20;
const HEADER: usize = 8;

/// A record to commit: its position and its rows.
pub struct Record {
    pub position: u64,
    pub batch: Batch,
}

pub struct IngestLog {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    len: u64,
    /// Older files and the last position each holds.
    sealed: Vec<(PathBuf, u64)>,
    /// The position of the last record written (0: none yet).
    last: u64,
    buf: Vec<u8>,
}

/// The log's folder for a database file.
pub fn dir_of(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".ingest");
    db_path.with_file_name(name)
}

impl IngestLog {
    /// Opens the log of `db_path` and reads back every record above `committed` (what
    /// DuckDB holds), in order. A torn tail is cut off. Writing starts in a new file.
    pub fn open(db_path: &Path, committed: u64) -> io::Result<(IngestLog, Vec<Record>)> {
        let dir = dir_of(db_path);
        std::fs::create_dir_all(&dir)?;
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let path = e.path();
                let first = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()?;
                Some((first, path))
            })
            .collect();
        files.sort();
        let mut replay = Vec::new();
        let mut sealed = Vec::new();
        let mut last = committed;
        for (_, path) in files {
            let (records, good_len) = read_file(&path)?;
            let file_last = records.last().map_or(0, |r| r.position);
            if good_len < std::fs::metadata(&path)?.len() {
                tracing::warn!(file = %path.display(), "cutting a torn record off the ingest log (it was never acknowledged)");
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(good_len)?;
            }
            if records.is_empty() {
                // Nothing in it (a start that wrote nothing): its name may be the next one.
                std::fs::remove_file(&path)?;
                continue;
            }
            last = last.max(file_last);
            if file_last <= committed {
                // DuckDB holds all of it already.
                std::fs::remove_file(&path)?;
                continue;
            }
            replay.extend(records.into_iter().filter(|r| r.position > committed));
            sealed.push((path, file_last));
        }
        let (file, path) = new_file(&dir, last + 1)?;
        let log = IngestLog {
            dir,
            file,
            path,
            len: 0,
            sealed,
            last,
            buf: Vec::new(),
        };
        Ok((log, replay))
    }

    /// Writes one record per batch and syncs them to disk; returns the position of each.
    /// On error nothing of them counts: the file is cut back to where it was.
    pub fn append(&mut self, batches: &[&Batch]) -> io::Result<Vec<u64>> {
        if self.len >= SEGMENT_BYTES {
            self.start_file()?;
        }
        self.buf.clear();
        let mut positions = Vec::with_capacity(batches.len());
        for (i, batch) in batches.iter().enumerate() {
            let position = self.last + 1 + i as u64;
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0; HEADER]);
            position.put(&mut self.buf);
            batch.put(&mut self.buf);
            let body = &self.buf[start + HEADER..];
            let len = u32::try_from(body.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
            let crc = crc32fast::hash(body);
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
            self.buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
            positions.push(position);
        }
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A failed write may have left part of the records behind: cut them off, and
            // write the next records there, not after a hole a replay would stop at.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        if let Some(&p) = positions.last() {
            self.last = p;
        }
        // Keep the buffer of a large group from being held for good.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(positions)
    }

    /// Deletes the files whose records DuckDB holds (up to `committed`); with `all`, the
    /// current one too when it holds nothing else (a clean shutdown).
    pub fn release(&mut self, committed: u64, all: bool) {
        self.sealed.retain(|(path, last)| {
            if *last > committed {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(error = %e, file = %path.display(), "cannot delete a committed ingest log file");
            }
            false
        });
        if all && committed >= self.last {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    fn start_file(&mut self) -> io::Result<()> {
        let (file, path) = new_file(&self.dir, self.last + 1)?;
        let old = std::mem::replace(&mut self.path, path);
        if self.len > 0 {
            self.sealed.push((old, self.last));
        } else {
            let _ = std::fs::remove_file(&old);
        }
        self.file = file;
        self.len = 0;
        Ok(())
    }
}

/// A new file for records from position `first` on.
fn new_file(dir: &Path, first: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(format!("{first:020}.log"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    // The new name must survive a crash too, or its records would not be found.
    File::open(dir)?.sync_all()?;
    Ok((file, path))
}

/// The whole records of a file and the length they span (a torn tail excluded).
fn read_file(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(body) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let mut r = Reader::new(body);
        let (Ok(position), Ok(batch)) = (u64::get(&mut r), Batch::get(&mut r)) else {
            break;
        };
        if !r.is_empty() {
            break;
        }
        records.push(Record { position, batch });
        at += HEADER + len;
    }
    Ok((records, at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::EventRow;

    fn events(names: &[&str]) -> Batch {
        Batch::Events(
            names
                .iter()
                .map(|n| EventRow {
                    event: (*n).into(),
                    ..Default::default()
                })
                .collect(),
        )
    }

    fn names(records: &[Record]) -> Vec<(u64, String)> {
        records
            .iter()
            .flat_map(|r| match &r.batch {
                Batch::Events(rows) => rows
                    .iter()
                    .map(|e| (r.position, e.event.clone()))
                    .collect::<Vec<_>>(),
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn records_above_the_committed_position_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.duckdb");
        let (mut log, replay) = IngestLog::open(&db, 0).unwrap();
        assert!(replay.is_empty());
        assert_eq!(
            log.append(&[&events(&["a", "b"]), &events(&["c"])])
                .unwrap(),
            [1, 2]
        );
        assert_eq!(log.append(&[&events(&["d"])]).unwrap(), [3]);
        drop(log);
        let (_, replay) = IngestLog::open(&db, 1).unwrap();
        assert_eq!(names(&replay), [(2, "c".into()), (3, "d".into())]);
        // Positions go on from the highest one seen, in a new file.
        let (mut log, replay) = IngestLog::open(&db, 3).unwrap();
        assert!(replay.is_empty());
        assert_eq!(log.append(&[&events(&["e"])]).unwrap(), [4]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.duckdb");
        let (mut log, _) = IngestLog::open(&db, 0).unwrap();
        log.append(&[&events(&["a"]), &events(&["b"])]).unwrap();
        let path = log.path.clone();
        drop(log);
        let full = std::fs::metadata(&path).unwrap().len();
        for cut in [full - 1, full - 5, full - 20] {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut).unwrap();
            let (_, replay) = IngestLog::open(&db, 0).unwrap();
            assert_eq!(names(&replay), [(1, "a".into())]);
            assert!(std::fs::metadata(&path).unwrap().len() < cut + 1);
        }
        // A flipped bit in a body is caught by the CRC.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let (_, replay) = IngestLog::open(&db, 0).unwrap();
        assert!(replay.is_empty());
    }

    #[test]
    fn committed_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.duckdb");
        let (mut log, _) = IngestLog::open(&db, 0).unwrap();
        log.append(&[&events(&["a"])]).unwrap();
        log.start_file().unwrap();
        log.append(&[&events(&["b"])]).unwrap();
        let count = || std::fs::read_dir(dir_of(&db)).unwrap().count();
        assert_eq!(count(), 2);
        log.release(1, false);
        assert_eq!(count(), 1);
        log.release(1, true);
        assert_eq!(count(), 1, "the current file still holds position 2");
        log.release(2, true);
        assert!(!dir_of(&db).exists());
    }
}
