//! The files a video job reads and writes.
//!
//! Inputs must exist before ffmpeg is started, so a typo is a clear non-retryable error
//! naming the path rather than an ffmpeg message. Outputs are written to a hidden temp file
//! in the target's directory (same filesystem, so the final rename is atomic) and renamed
//! into place only on success: a failed, cancelled or timed-out run never leaves a partial
//! file behind.

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
        if same_file(target, input).await {
            return Err(JobError::fatal(format!(
                "output '{}' is the input file",
                target.display()
            )));
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

    /// Moves the finished temp file to the target; fails if the temp file is missing or
    /// empty (ffmpeg wrote nothing), or if the target appeared meanwhile without `overwrite`.
    pub async fn commit(mut self) -> Result<PathBuf, JobError> {
        match tokio::fs::metadata(&self.temp).await {
            Ok(m) if m.len() > 0 => {}
            _ => {
                return Err(JobError::fatal(format!(
                    "ffmpeg wrote nothing for '{}'",
                    self.target.display()
                )))
            }
        }
        if !self.overwrite && tokio::fs::try_exists(&self.target).await.unwrap_or(false) {
            return Err(exists(&self.target));
        }
        tokio::fs::rename(&self.temp, &self.target)
            .await
            .map_err(|e| {
                JobError::new(format!(
                    "cannot move the result into '{}': {e}",
                    self.target.display()
                ))
            })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
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

        let out = TempOutput::prepare(&target, &input, false).await.unwrap();
        std::fs::write(out.path(), b"whole").unwrap();
        assert_eq!(out.commit().await.unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");

        let e = TempOutput::prepare(&target, &input, false)
            .await
            .unwrap_err();
        assert!(e.message().contains("already exists") && e.message().contains("out.mp4"));
        assert!(TempOutput::prepare(&target, &input, true).await.is_ok());
        let e = TempOutput::prepare(&input, &input, true).await.unwrap_err();
        assert!(e.message().contains("is the input"), "{}", e.message());
        let e = TempOutput::prepare(&dir.join("no/such/dir.mp4"), &input, false)
            .await
            .unwrap_err();
        assert!(e.message().contains("directory"), "{}", e.message());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
