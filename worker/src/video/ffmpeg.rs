//! Finding `ffmpeg` / `ffprobe` and running one as a child process that dies with its job.
//!
//! A [`Running`] child has stdin closed, stdout piped to the caller (ffmpeg's
//! `-progress pipe:1` blocks, or ffprobe's JSON) and stderr collected in the background into a
//! bounded [`StderrTail`] for error messages. When the job's cancellation token fires the
//! child is killed and reaped; when a [`Running`] is dropped unfinished — which is what a job
//! timeout does, since the worker drops the handler's future — the child is killed at once
//! and reaped in the background; and when the worker itself dies, even by SIGKILL, the
//! kernel kills the child (`dies_with_worker`). The temp output a child writes is handed to
//! its [`Running`] while it runs, and removed only once the child is dead, so it cannot be
//! recreated.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use queue_core::worker::CancellationToken;
use queue_core::JobError;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::config::{FFMPEG_ENV, FFPROBE_ENV};
use super::files::TempOutput;

/// How many of the last stderr lines an error keeps.
pub const TAIL_LINES: usize = 20;
/// How many bytes of the last stderr lines an error keeps at most.
pub const TAIL_BYTES: usize = 4096;

/// Which of the two ffmpeg programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `ffmpeg`: decodes, filters and encodes.
    Ffmpeg,
    /// `ffprobe`: describes a media file.
    Ffprobe,
}

impl Tool {
    /// The program's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
        }
    }

    /// The environment variable that overrides where it is.
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::Ffmpeg => FFMPEG_ENV,
            Tool::Ffprobe => FFPROBE_ENV,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A located ffmpeg program, ready to run.
#[derive(Debug, Clone)]
pub struct Program {
    tool: Tool,
    path: PathBuf,
}

impl Program {
    /// Finds `configured` — a bare name is looked up on `PATH`, anything with a `/` is taken
    /// as a path — or fails (non-retryable) with "ffmpeg not found (looked for …)".
    pub fn locate(tool: Tool, configured: &Path) -> Result<Program, JobError> {
        let found = if is_bare_name(configured) {
            find_on_path(configured.as_os_str())
        } else {
            is_executable(configured).then(|| configured.to_path_buf())
        };
        match found {
            Some(path) => Ok(Program { tool, path }),
            None => Err(not_found(tool, configured)),
        }
    }

    /// Which program this is.
    pub fn tool(&self) -> Tool {
        self.tool
    }

    /// Where it was found.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts it with `args`; `cancel` is the job's cancellation token.
    pub fn spawn<I, S>(&self, args: I, cancel: &CancellationToken) -> Result<Running, JobError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = dies_with_worker(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // the last line of defence: whatever drops the child kills it
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        Ok(Running {
            tool: self.tool,
            child: Some(child),
            stdout: BufReader::new(stdout),
            stderr: Some(tokio::spawn(collect_tail(stderr))),
            cancel: cancel.clone(),
            output: None,
        })
    }

    fn spawn_error(&self, e: std::io::Error) -> JobError {
        match e.kind() {
            ErrorKind::NotFound => not_found(self.tool, &self.path),
            ErrorKind::PermissionDenied => JobError::fatal(format!(
                "cannot run {} at '{}': permission denied (set {} to an executable)",
                self.tool,
                self.path.display(),
                self.tool.env_var()
            )),
            _ => JobError::new(format!(
                "cannot start {} ('{}'): {e}",
                self.tool,
                self.path.display()
            )),
        }
    }
}

/// Where `setpriv` (util-linux) is looked for: it starts a program with a parent-death
/// signal, which the standard library cannot set without `unsafe`.
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command that runs `program`, killed by the kernel if the worker dies first: a worker
/// killed with SIGKILL runs no destructor, and an ffmpeg left behind would go on writing
/// the output of a job that another worker runs again meanwhile. Through `setpriv
/// --pdeathsig KILL` when it is there (Linux); the program alone otherwise. (The signal
/// comes when the thread that started the child ends: tokio's runtime threads live as long
/// as the worker.)
fn dies_with_worker(program: &Path) -> Command {
    if setpriv_works() {
        let mut cmd = Command::new(SETPRIV);
        cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Whether `setpriv --pdeathsig` runs a program here (checked once: a setpriv older than
/// util-linux 2.33 does not know the option, and would fail every video job).
fn setpriv_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        cfg!(target_os = "linux")
            && is_executable(Path::new(SETPRIV))
            && std::process::Command::new(SETPRIV)
                .args(["--pdeathsig", "KILL", "--", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// `path` as an ffmpeg / ffprobe file argument: with the `file:` protocol spelled out, so a
/// name starting with `-` is not read as an option nor one containing `:` as a protocol.
pub fn file_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path);
    arg
}

fn not_found(tool: Tool, configured: &Path) -> JobError {
    let place = if is_bare_name(configured) {
        format!("'{}' on PATH", configured.display())
    } else {
        format!("'{}'", configured.display())
    };
    JobError::fatal(format!(
        "{tool} not found (looked for {place}; {})",
        install_hint(tool)
    ))
}

/// How to get `tool`, for an error saying it cannot be run.
fn install_hint(tool: Tool) -> String {
    format!(
        "install it, e.g. apt-get install ffmpeg, or set {}",
        tool.env_var()
    )
}

fn is_bare_name(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.parent() == Some(Path::new(""))
}

fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A started ffmpeg or ffprobe. Read its stdout with [`Running::next_line`] or
/// [`Running::read_to_end`], then [`Running::finish`] it to learn whether it succeeded.
#[derive(Debug)]
pub struct Running {
    tool: Tool,
    /// `None` once the child has been reaped.
    child: Option<Child>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<StderrTail>>,
    cancel: CancellationToken,
    /// The temp output the child writes, held until the child is dead (dropping it removes
    /// the file unless it was committed).
    output: Option<TempOutput>,
}

impl Running {
    /// Hands over the temp output the child writes. Get it back from
    /// [`Running::finish_writing`] once the child has succeeded; if the run fails, is
    /// cancelled or is dropped before that, the output is dropped (its file removed) once the
    /// child is dead.
    pub(crate) fn writing(mut self, output: TempOutput) -> Self {
        self.output = Some(output);
        self
    }

    /// The child's process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The next line of stdout without its line ending (`None` at the end), or an error if
    /// the job is cancelled meanwhile (the child is then killed).
    pub async fn next_line(&mut self) -> Result<Option<String>, JobError> {
        let mut buf = Vec::new();
        let read = tokio::select! {
            r = self.stdout.read_until(b'\n', &mut buf) => Some(r),
            _ = self.cancel.cancelled() => None,
        };
        match read {
            None => Err(self.stop().await),
            Some(Err(e)) => Err(JobError::new(format!(
                "reading {}'s output failed: {e}",
                self.tool
            ))),
            Some(Ok(0)) => Ok(None),
            Some(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf);
                Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
            }
        }
    }

    /// All of stdout that is left, for programs (ffprobe) whose output is one document.
    pub async fn read_to_end(&mut self) -> Result<String, JobError> {
        let mut out = String::new();
        while let Some(line) = self.next_line().await? {
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    /// Waits for the child to exit (reading and discarding any stdout left, so it cannot
    /// block on a full pipe). A non-zero exit is a retryable error `ffmpeg exited with
    /// status N: <last stderr line>` carrying the stderr tail as its detail.
    pub async fn finish(mut self) -> Result<(), JobError> {
        self.wait_success().await
    }

    /// [`Running::finish`] for a child given an output with [`Running::writing`]: the output
    /// back once the child has exited successfully. On any error the output is dropped (its
    /// file removed), the child being dead by then.
    pub(crate) async fn finish_writing(mut self) -> Result<TempOutput, JobError> {
        self.wait_success().await?;
        Ok(self
            .output
            .take()
            .expect("finish_writing is called on a child given an output"))
    }

    async fn wait_success(&mut self) -> Result<(), JobError> {
        while self.next_line().await?.is_some() {}
        let child = self
            .child
            .as_mut()
            .expect("the child is reaped only by finish or stop");
        let waited = tokio::select! {
            s = child.wait() => Some(s),
            _ = self.cancel.cancelled() => None,
        };
        let status = match waited {
            None => return Err(self.stop().await),
            Some(Err(e)) => {
                return Err(JobError::new(format!(
                    "waiting for {} failed: {e}",
                    self.tool
                )))
            }
            Some(Ok(status)) => status,
        };
        self.child = None;
        let tail = self.stderr_tail().await;
        if status.success() {
            Ok(())
        } else {
            Err(exit_error(self.tool, status, &tail))
        }
    }

    /// Kills and reaps the child, then removes its output, and says why.
    async fn stop(&mut self) -> JobError {
        if let Some(mut child) = self.child.take() {
            // kill() also waits, so no zombie is left behind
            let _ = child.kill().await;
        }
        drop(self.output.take());
        JobError::new(format!(
            "{} was stopped because the job was cancelled (timed out, or the worker is stopping)",
            self.tool
        ))
    }

    async fn stderr_tail(&mut self) -> StderrTail {
        let Some(task) = self.stderr.take() else {
            return StderrTail::default();
        };
        // the pipe closes when the child exits; the bound only guards against a grandchild
        // that inherited it
        match tokio::time::timeout(Duration::from_secs(2), task).await {
            Ok(Ok(tail)) => tail,
            _ => StderrTail::default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // a finished or stopped child is dead already: the output, if still here, is dropped
        // (its file removed) with `self`
        let Some(mut child) = self.child.take() else {
            return;
        };
        // dropped mid-run (job timeout, worker shutdown): kill now, and reap in the
        // background before dropping the output — its file is removed after the child is
        // dead, so the child cannot recreate it
        let _ = child.start_kill();
        let output = self.output.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = child.wait().await;
                drop(output);
            });
        }
        // without a runtime (it is shutting down) nothing can wait for the child: the
        // output is dropped here, right after the kill, and the child with it
        // (`kill_on_drop`)
    }
}

fn exit_error(tool: Tool, status: ExitStatus, tail: &StderrTail) -> JobError {
    // the program could not be started by setpriv (`dies_with_worker`): gone or not
    // executable since it was found, which no retry mends, as when spawning it fails
    if let (Some(126 | 127), Some(line)) = (status.code(), tail.last_line()) {
        if line.starts_with("setpriv: failed to execute") {
            return JobError::fatal(format!(
                "cannot run {tool}: {line} ({})",
                install_hint(tool)
            ));
        }
    }
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("{tool} exited with status {code}"),
        (None, Some(signal)) => format!("{tool} was killed by signal {signal}"),
        (None, None) => format!("{tool} failed ({status})"),
    };
    let message = match tail.last_line() {
        Some(line) => format!("{what}: {line}"),
        None => what,
    };
    let error = JobError::new(message);
    if tail.is_empty() {
        error
    } else {
        error.with_detail(tail.text())
    }
}

/// The last lines a child wrote to stderr: at most [`TAIL_LINES`] lines and [`TAIL_BYTES`]
/// bytes, oldest dropped first.
#[derive(Debug, Default, Clone)]
pub struct StderrTail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl StderrTail {
    /// Adds a line (without its ending); empty lines are skipped.
    pub fn push(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        let line = last_bytes(line, TAIL_BYTES);
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
        while self.lines.len() > TAIL_LINES || self.bytes > TAIL_BYTES {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The newest line.
    pub fn last_line(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }

    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The kept lines, oldest first, one per line.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The last at most `max` bytes of `s`, cut at a character boundary.
fn last_bytes(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

async fn collect_tail(stderr: impl AsyncRead + Unpin) -> StderrTail {
    let mut reader = BufReader::new(stderr);
    let mut tail = StderrTail::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return tail,
            Ok(_) => {
                // ffmpeg rewrites status lines with '\r': each piece is a line of its own
                for piece in String::from_utf8_lossy(&buf).split('\r') {
                    tail.push(piece);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Program {
        Program::locate(Tool::Ffmpeg, Path::new("sh")).expect("sh on PATH")
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_missing_binary_is_a_fatal_error_saying_where_it_looked() {
        let e = Program::locate(Tool::Ffmpeg, Path::new("jobq-no-such-ffmpeg")).unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(
            e.message(),
            "ffmpeg not found (looked for 'jobq-no-such-ffmpeg' on PATH; install it, e.g. \
             apt-get install ffmpeg, or set JOBQ_FFMPEG)"
        );
        let e = Program::locate(Tool::Ffprobe, Path::new("/nonexistent/ffprobe")).unwrap_err();
        assert!(
            e.message()
                .starts_with("ffprobe not found (looked for '/nonexistent/ffprobe';"),
            "{}",
            e.message()
        );
        assert!(e.message().ends_with("or set JOBQ_FFPROBE)"));
        // a directory is not a program
        assert!(Program::locate(Tool::Ffmpeg, Path::new("/tmp")).is_err());
    }

    #[test]
    fn the_stderr_tail_is_bounded_in_lines_and_bytes() {
        let mut tail = StderrTail::default();
        for i in 0..100 {
            tail.push(&format!("line {i}\n"));
        }
        tail.push("");
        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert_eq!(tail.last_line(), Some("line 99"));
        assert!(tail.text().starts_with("line 80\nline 81"));
        let long = "é".repeat(TAIL_BYTES);
        tail.push(&long);
        assert_eq!(tail.lines.len(), 1);
        assert!(tail.bytes <= TAIL_BYTES && tail.text().len() == tail.bytes);
    }

    /// Was: started through setpriv, a program gone since it was found was setpriv's exit
    /// 127, a retryable "exited with status 127" that burnt every attempt, where spawning
    /// it had failed at once with "not found".
    #[tokio::test]
    async fn a_program_gone_since_it_was_found_fails_for_good() {
        let gone = Program {
            tool: Tool::Ffmpeg,
            path: PathBuf::from("/nonexistent/jobq-test/ffmpeg"),
        };
        let e = match gone.spawn(["-version"], &CancellationToken::new()) {
            Ok(run) => run.finish().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(!e.is_retryable(), "{}", e.message());
        assert!(e.message().contains("ffmpeg"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_failing_child_reports_its_status_and_stderr_tail() {
        let cancel = CancellationToken::new();
        let mut run = sh()
            .spawn(
                [
                    "-c",
                    "echo out; echo first >&2; echo 'bad input' >&2; exit 3",
                ],
                &cancel,
            )
            .unwrap();
        assert_eq!(run.next_line().await.unwrap().as_deref(), Some("out"));
        let e = run.finish().await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message(), "ffmpeg exited with status 3: bad input");
        assert_eq!(e.detail(), Some("first\nbad input"));
    }

    /// A fresh directory and a temp output in it, for `target` there.
    async fn temp_output(dir_name: &str) -> (PathBuf, TempOutput) {
        let dir = std::env::temp_dir().join(format!("{dir_name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mp4");
        std::fs::write(&input, b"in").unwrap();
        let out = TempOutput::prepare(&dir.join("out.mp4"), &input, false)
            .await
            .unwrap();
        (dir, out)
    }

    #[tokio::test]
    async fn cancelling_kills_and_reaps_the_child_and_removes_its_output() {
        let (dir, out) = temp_output("jobq-ffmpeg-cancel").await;
        let temp = out.path().to_path_buf();
        std::fs::write(&temp, b"partial").unwrap();
        let cancel = CancellationToken::new();
        let run = sh()
            .spawn(["-c", "exec sleep 30"], &cancel)
            .unwrap()
            .writing(out);
        let pid = run.id().unwrap();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.cancel();
        });
        let e = run.finish_writing().await.unwrap_err();
        assert!(e.message().contains("cancelled"), "{}", e.message());
        assert!(!alive(pid), "child {pid} still exists");
        assert!(!temp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_successful_child_hands_its_output_back_and_a_failed_one_removes_it() {
        let (dir, out) = temp_output("jobq-ffmpeg-hand-back").await;
        let temp = out.path().to_path_buf();
        let cancel = CancellationToken::new();
        let out = sh()
            .spawn(
                ["-c", "printf whole > \"$0\"", temp.to_str().unwrap()],
                &cancel,
            )
            .unwrap()
            .writing(out)
            .finish_writing()
            .await
            .unwrap();
        assert_eq!(out.written().await.unwrap(), 5);
        drop(out);
        assert!(!temp.exists());

        let (_, out) = temp_output("jobq-ffmpeg-hand-back").await;
        let temp = out.path().to_path_buf();
        let e = sh()
            .spawn(
                ["-c", "printf half > \"$0\"; exit 1", temp.to_str().unwrap()],
                &cancel,
            )
            .unwrap()
            .writing(out)
            .finish_writing()
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{}", e.message());
        assert!(!temp.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_running_child_removes_its_output_once_it_is_dead() {
        let (dir, out) = temp_output("jobq-ffmpeg-drop").await;
        let temp = out.path().to_path_buf();
        let cancel = CancellationToken::new();
        // a writer that keeps recreating its output until it dies
        let run = sh()
            .spawn(
                [
                    "-c",
                    "while :; do printf x >> \"$0\"; done",
                    temp.to_str().unwrap(),
                ],
                &cancel,
            )
            .unwrap()
            .writing(out);
        let pid = run.id().unwrap();
        for _ in 0..500 {
            if temp.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(temp.exists(), "the child never wrote");
        drop(run);
        for _ in 0..500 {
            if !alive(pid) && !temp.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(pid), "child {pid} survived being dropped");
        // removed, and not recreated afterwards
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!temp.exists(), "the output outlived the child");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn dropping_a_running_child_kills_it() {
        let cancel = CancellationToken::new();
        let run = sh().spawn(["-c", "exec sleep 30"], &cancel).unwrap();
        let pid = run.id().unwrap();
        drop(run);
        for _ in 0..200 {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("child {pid} survived being dropped");
    }
}
