//! The tuner's files in `DATA_DIR/tuner/`, written off the bank thread:
//! - `policy.json`: what it learnt, replaced whole and crash-safely (temporary file, fsync,
//!   rename, fsync of the directory), so a power cut leaves the old policy or the new one;
//! - `changes.jsonl`: one JSON line per change and per change's measured effect, appended and
//!   synced; a torn last line is skipped on read; at 4 MiB it moves to `changes.1.jsonl`
//!   (one generation kept), so the history is bounded.

use super::metrics::TunerCounters;
use crossbeam_channel::{Sender, TrySendError, bounded};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;

pub const POLICY: &str = "policy.json";
pub const CHANGES: &str = "changes.jsonl";
const CHANGES_OLD: &str = "changes.1.jsonl";
const CHANGES_MAX_BYTES: u64 = 4 << 20;
/// Jobs waiting for the writer; beyond, a job is dropped and counted (the bank never waits).
pub const QUEUE: usize = 16;

pub enum Job {
    /// The whole policy, serialised.
    Policy(String),
    /// One line of `changes.jsonl`.
    Change(String),
}

/// Replace `dir/policy.json` with `json`, crash-safely.
pub fn save_policy(dir: &Path, json: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{POLICY}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(json.as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(POLICY))?;
    File::open(dir)?.sync_all()
}

/// A policy file larger than this is not one the tuner wrote (8 clusters × 256 settings is
/// well under 1 MiB): refused unread.
const POLICY_MAX_BYTES: u64 = 16 << 20;

/// The saved policy's text, if there is one. Reads only (`tuner status` calls it while the
/// node may be saving); a leftover temporary file is the writer's to remove ([`Writer::start`]).
pub fn load_policy(dir: &Path) -> io::Result<Option<String>> {
    let path = dir.join(POLICY);
    match fs::metadata(&path) {
        Ok(m) if m.len() > POLICY_MAX_BYTES => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {} bytes, over {POLICY_MAX_BYTES}",
                path.display(),
                m.len()
            ),
        )),
        Ok(_) => fs::read_to_string(&path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Move a policy that cannot be used aside (kept for a person to look at), so the next start
/// does not trip on it again.
pub fn reject_policy(dir: &Path) -> io::Result<()> {
    fs::rename(dir.join(POLICY), dir.join(format!("{POLICY}.rejected")))
}

pub fn append_change(dir: &Path, line: &str) -> io::Result<()> {
    let path = dir.join(CHANGES);
    let rotate = fs::metadata(&path).is_ok_and(|m| m.len() >= CHANGES_MAX_BYTES);
    if rotate {
        fs::rename(&path, dir.join(CHANGES_OLD))?;
    }
    let created = rotate || !path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)?;
    // A line torn by a crash stays a line of its own (skipped on read), not the start of this one.
    let len = f.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut last, len - 1)?;
    }
    let sep = if last[0] == b'\n' { "" } else { "\n" };
    f.write_all(format!("{sep}{line}\n").as_bytes())?;
    f.sync_data()?;
    if created {
        // The new file's (and the rotated one's) directory entries.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The newest `max` records of the change history, oldest first. Lines that do not parse (a
/// torn last line) are skipped.
pub fn read_changes(dir: &Path, max: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for name in [CHANGES_OLD, CHANGES] {
        if let Ok(text) = fs::read_to_string(dir.join(name)) {
            out.extend(
                text.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()),
            );
        }
    }
    let skip = out.len().saturating_sub(max);
    out.split_off(skip)
}

/// The writer thread (`gc-tuner-io`): saves policies and appends change records.
pub struct Writer {
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    counters: &'static TunerCounters,
}

impl Writer {
    pub fn start(dir: PathBuf, counters: &'static TunerCounters) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        // A save cut short before its rename: the policy it would have replaced is whole.
        let _ = fs::remove_file(dir.join(format!("{POLICY}.tmp")));
        let (tx, rx) = bounded::<Job>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("gc-tuner-io".into())
            .spawn(move || {
                for job in rx {
                    let done = match &job {
                        Job::Policy(json) => save_policy(&dir, json),
                        Job::Change(line) => append_change(&dir, line),
                    };
                    match done {
                        Ok(()) if matches!(job, Job::Policy(_)) => {
                            counters.policy_writes.fetch_add(1, Relaxed);
                        }
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(dir = %dir.display(), %e, "tuner: write failed");
                            counters.io_dropped.fetch_add(1, Relaxed);
                        }
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Queue a job; dropped and counted if the writer is behind.
    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.counters.io_dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Queue a job, waiting for room (at stop: the last policy must not be dropped).
    pub fn send_wait(&self, job: Job) {
        if let Some(tx) = &self.tx
            && tx.send(job).is_err()
        {
            self.counters.io_dropped.fetch_add(1, Relaxed);
        }
    }
}

impl Drop for Writer {
    /// Write what is queued, then stop.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_save_or_record_leaves_the_last_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(load_policy(d).unwrap(), None);
        save_policy(d, "{\"a\":1}").unwrap();
        // A save cut short before its rename: the temporary file is ignored (and removed when
        // a writer starts).
        fs::write(d.join("policy.json.tmp"), "{\"a\":").unwrap();
        assert_eq!(load_policy(d).unwrap().as_deref(), Some("{\"a\":1}"));
        assert!(
            d.join("policy.json.tmp").exists(),
            "reading removes nothing"
        );
        append_change(d, "{\"window\":1}").unwrap();
        append_change(d, "{\"window\":2}").unwrap();
        // A record cut short by a crash mid-append.
        OpenOptions::new()
            .append(true)
            .open(d.join(CHANGES))
            .unwrap()
            .write_all(b"{\"window\":3,\"rea")
            .unwrap();
        append_change(d, "{\"window\":4}").unwrap();
        let read = read_changes(d, 10);
        assert_eq!(read.len(), 3);
        assert_eq!(read[2]["window"], 4);
        assert_eq!(read[1]["window"], 2);
        assert_eq!(read_changes(d, 1)[0]["window"], 4);
        reject_policy(d).unwrap();
        assert_eq!(load_policy(d).unwrap(), None);
        assert!(d.join("policy.json.rejected").exists());
    }
}
