//! The real `wasmudf` binary, started on an ephemeral loopback port over a data
//! directory, and restarted on the same one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `wasmudf serve`; killed when dropped.
pub struct ServerProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    extra_args: Vec<String>,
    child: Child,
    port: u16,
}

impl ServerProcess {
    /// Starts `binary` on `127.0.0.1:0` with `data_dir`, plus `extra_args`
    /// (e.g. `--modules-dir`), and waits for its banner to learn the port.
    pub fn start(binary: &Path, data_dir: &Path, extra_args: &[String]) -> Result<Self, String> {
        let (child, port) = spawn(binary, data_dir, extra_args)?;
        Ok(ServerProcess {
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            extra_args: extra_args.to_vec(),
            child,
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for reading its resource use from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A tokio-postgres connection string for it, as role `wasmudf`.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=wasmudf", self.port)
    }

    /// The server's log file (its stderr), in the data directory's parent.
    pub fn log_path(&self) -> PathBuf {
        log_path(&self.data_dir)
    }

    /// Stops the server gracefully (SIGTERM; SIGKILL after 10 s) and starts it again on
    /// the same data directory (a new port).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop(false);
        let (child, port) = spawn(&self.binary, &self.data_dir, &self.extra_args)?;
        self.child = child;
        self.port = port;
        Ok(())
    }

    /// Kills the server (SIGKILL: nothing is flushed) and starts it again.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        self.stop(true);
        let (child, port) = spawn(&self.binary, &self.data_dir, &self.extra_args)?;
        self.child = child;
        self.port = port;
        Ok(())
    }

    /// Sends SIGTERM and waits up to `wait` for the process to exit; its exit status,
    /// or an error if it was still running (it is then killed).
    pub fn terminate(&mut self, wait: Duration) -> Result<std::process::ExitStatus, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!("still running {wait:?} after SIGTERM"))
    }

    fn stop(&mut self, kill: bool) {
        if !kill {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_path(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    data_dir.with_file_name(format!("{name}.server.log"))
}

/// Starts the binary; returns it and the port from its banner
/// (`wasmudf listening on 127.0.0.1:PORT — ...`).
fn spawn(binary: &Path, data_dir: &Path, extra_args: &[String]) -> Result<(Child, u16), String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data_dir))
        .map_err(|e| format!("server log: {e}"))?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .env("WASMUDF_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let Some(stdout) = child.stdout.take() else {
        return Err("no stdout".into());
    };
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let port = line
        .split_whitespace()
        .nth(3)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok());
    match (read, port) {
        (Ok(_), Some(port)) => Ok((child, port)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path(data_dir)).unwrap_or_default();
            Err(format!(
                "{} did not start (banner {line:?}); its log:\n{log}",
                binary.display()
            ))
        }
    }
}
