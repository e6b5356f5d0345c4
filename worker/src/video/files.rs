//! The files a video job reads and writes.
//!
//! Inputs must exist before ffmpeg is started, so a typo is a clear non-retryable error
//! naming the path rather than an ffmpeg message. Outputs are written to a hidden temp file
//! in the target's directory (same filesystem, so moving it into place is atomic), read back
//! from there, and moved into place last, only on success: a failed, cancelled or timed-out
//! run never leaves a partial file behind, and once the target exists the job has nothing
//! left that can fail.
//!
//! Without `overwrite` the move is a hard link (which fails if the target exists, checked
//! and done in one step by the filesystem) followed by removing the temp name, so of two
//! jobs writing the same output exactly one succeeds; with `overwrite` it is a rename.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use queue_core::JobError;

/// Checks that `input` is an existing file; returns its size in bytes.
pub async fn check_input(input: &Path) -> Result<u64, JobError> {
    match tokio::fs::metadata(input).await {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(_) => Err(JobError::fatal(format!(
            "input '{}' is not a file",
            input.display()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(JobError::fatal(format!(
            "input file '{}' does not exist",
            input.display()
        ))),
        Err(e) => Err(JobError::new(format!(
            "cannot read input '{}': {e}",
            input.display()
        ))),
    }
}

/// The lower-cased extension of `path`, if any.
pub fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// An output being written: a temp file beside `target`, removed on drop unless
/// [`TempOutput::commit`]ted.
///
/// It is the temp file's only owner: nothing else removes it. While a child process writes
/// the file, the [`Running`](super::ffmpeg::Running) child holds this value, so that it is
/// dropped (and the file removed) only once the child is dead.
#[derive(Debug)]
pub struct TempOutput {
    temp: PathBuf,
    target: PathBuf,
    overwrite: bool,
    committed: bool,
}

impl TempOutput {
    /// Checks that `target` can be written — its directory exists, and it does not exist
    /// unless `overwrite` — and picks a temp path beside it. `input` must not be `target`.
    pub async fn prepare(target: &Path, input: &Path, overwrite: bool) -> Result<Self, JobError> {
        Self::prepare_from(target, Some(input), overwrite).await
    }

    /// As [`TempOutput::prepare`], for an output made from no input file (a manifest).
    pub async fn prepare_new(target: &Path, overwrite: bool) -> Result<Self, JobError> {
        Self::prepare_from(target, None, overwrite).await
    }

    async fn prepare_from(
        target: &Path,
        input: Option<&Path>,
        overwrite: bool,
    ) -> Result<Self, JobError> {
        let name = target.file_name().ok_or_else(|| {
            JobError::fatal(format!("output '{}' names no file", target.display()))
        })?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(JobError::fatal(format!(
                "the directory of output '{}' does not exist",
                target.display()
            )));
        }
        if let Some(input) = input {
            if same_file(target, input).await {
                return Err(JobError::fatal(format!(
                    "output '{}' is the input file",
                    target.display()
                )));
            }
        }
        match tokio::fs::metadata(target).await {
            Ok(m) if m.is_dir() => {
                return Err(JobError::fatal(format!(
                    "output '{}' is a directory",
                    target.display()
                )))
            }
            Ok(_) if !overwrite => return Err(exists(target)),
            _ => {}
        }
        // hidden, unique, and keeping the extension so ffmpeg still sees the format
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut temp_name = format!(
            ".{}.jobq-{}-{}.part",
            name.to_string_lossy(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Some(ext) = extension(target) {
            temp_name.push('.');
            temp_name.push_str(&ext);
        }
        Ok(TempOutput {
            temp: dir.join(temp_name),
            target: target.to_path_buf(),
            overwrite,
            committed: false,
        })
    }

    /// Where ffmpeg should write.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The size in bytes of what was written; a non-retryable error if nothing was (the temp
    /// file is missing or empty).
    pub async fn written(&self) -> Result<u64, JobError> {
        match tokio::fs::metadata(&self.temp).await {
            Ok(m) if m.is_file() && m.len() > 0 => Ok(m.len()),
            _ => Err(JobError::fatal(format!(
                "ffmpeg wrote nothing for '{}'",
                self.target.display()
            ))),
        }
    }

    /// Moves the finished temp file to the target, as the module docs say; fails if nothing
    /// was written, or (non-retryably) if the target exists without `overwrite` — even if
    /// it appeared a moment ago, say by another job writing the same output.
    pub async fn commit(mut self) -> Result<PathBuf, JobError> {
        self.written().await?;
        let moved = if self.overwrite {
            tokio::fs::rename(&self.temp, &self.target).await
        } else {
            // the temp name is removed by `Drop`, leaving the file under the target's name
            tokio::fs::hard_link(&self.temp, &self.target).await
        };
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists && !self.overwrite => {
                return Err(exists(&self.target))
            }
            Err(e) => {
                return Err(JobError::new(format!(
                    "cannot move the result into '{}': {e}",
                    self.target.display()
                )))
            }
        }
        self.committed = self.overwrite;
        Ok(self.target.clone())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        // after a rename the temp name is gone already; after a hard link it is the second
        // name of the committed file, which keeps its target name
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn exists(target: &Path) -> JobError {
    JobError::fatal(format!(
        "output '{}' already exists (set \"overwrite\": true to replace it)",
        target.display()
    ))
}

async fn same_file(a: &Path, b: &Path) -> bool {
    match (
        tokio::fs::canonicalize(a).await,
        tokio::fs::canonicalize(b).await,
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_appear_only_when_committed() {
        let dir = std::env::temp_dir().join(format!("jobq-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mp4");
        std::fs::write(&input, b"in").unwrap();
        let target = dir.join("out.mp4");

        let e = check_input(&dir.join("nope.mp4")).await.unwrap_err();
        assert!(!e.is_retryable() && e.message().contains("nope.mp4"));
        assert_eq!(check_input(&input).await.unwrap(), 2);

        // dropped before commit: nothing is left
        let out = TempOutput::prepare(&target, &input, false).await.unwrap();
        assert!(out.path().extension().is_some_and(|e| e == "mp4"));
        std::fs::write(out.path(), b"half").unwrap();
        let temp = out.path().to_path_buf();
        drop(out);
        assert!(!temp.exists() && !target.exists());

        // nothing written: an error, and nothing left
        let out = TempOutput::prepare(&target, &input, false).await.unwrap();
        let e = out.commit().await.unwrap_err();
        assert!(e.message().contains("wrote nothing"), "{}", e.message());
        assert!(!target.exists());

        let out = TempOutput::prepare(&target, &input, false).await.unwrap();
        std::fs::write(out.path(), b"whole").unwrap();
        assert_eq!(out.written().await.unwrap(), 5);
        assert_eq!(out.commit().await.unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(files_in(&dir), ["in.mp4", "out.mp4"], "a temp file is left");

        let e = TempOutput::prepare(&target, &input, false)
            .await
            .unwrap_err();
        assert!(e.message().contains("already exists") && e.message().contains("out.mp4"));
        // with overwrite the target is replaced
        let out = TempOutput::prepare(&target, &input, true).await.unwrap();
        std::fs::write(out.path(), b"again").unwrap();
        assert_eq!(out.commit().await.unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"again");
        assert_eq!(files_in(&dir), ["in.mp4", "out.mp4"], "a temp file is left");
        let e = TempOutput::prepare(&input, &input, true).await.unwrap_err();
        assert!(e.message().contains("is the input"), "{}", e.message());
        let e = TempOutput::prepare(&dir.join("no/such/dir.mp4"), &input, false)
            .await
            .unwrap_err();
        assert!(e.message().contains("directory"), "{}", e.message());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_runs_writing_the_same_new_output_exactly_one_succeeds() {
        let dir = std::env::temp_dir().join(format!("jobq-files-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mp4");
        std::fs::write(&input, b"in").unwrap();
        for round in 0..20 {
            let target = dir.join(format!("out-{round}.mp4"));
            // both checked before either wrote: neither saw the target
            let a = TempOutput::prepare(&target, &input, false).await.unwrap();
            let b = TempOutput::prepare(&target, &input, false).await.unwrap();
            std::fs::write(a.path(), b"from a").unwrap();
            std::fs::write(b.path(), b"from b").unwrap();
            let (ra, rb) = tokio::join!(tokio::spawn(a.commit()), tokio::spawn(b.commit()));
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            assert!(ra.is_ok() ^ rb.is_ok(), "round {round}: {ra:?} {rb:?}");
            let loser = ra.err().or(rb.err()).unwrap();
            assert!(!loser.is_retryable(), "{}", loser.message());
            assert!(
                loser.message().contains("already exists"),
                "{}",
                loser.message()
            );
            let content = std::fs::read(&target).unwrap();
            assert!(content == b"from a" || content == b"from b");
        }
        assert_eq!(
            files_in(&dir).len(),
            21,
            "temp files left: {:?}",
            files_in(&dir)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}
