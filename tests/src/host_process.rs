//! The `voice-host` binary as a child process, as an operator runs it: a clean environment, the
//! given variables, JSON log lines on stdout. The lines are read on a thread of their own so
//! that every wait for one has a deadline; the process is killed if a test fails before it
//! exits.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Liveness bound on each wait (start-up, a log line, the exit): a hung host fails, never hangs.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A running `voice-host serve` process.
pub struct HostProcess {
    child: Child,
    /// Where it listens (from its `voice-host listening` line).
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// Every log line read so far.
    pub log: Vec<String>,
}

impl HostProcess {
    /// Starts the binary on 127.0.0.1, port 0, JSON logs, with `env` on top of a clean
    /// environment; returns once it logs where it listens.
    pub async fn spawn(env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(crate::binary::voice_host());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("BIND", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start voice-host");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut host = Self {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            lines,
            log: Vec::new(),
        };
        let listening = host
            .line_matching("the host logs that it listens", |l| {
                l.contains("voice-host listening")
            })
            .await;
        let v: serde_json::Value = serde_json::from_str(&listening).expect("json log line");
        host.addr = v["fields"]["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("a socket address");
        host
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Reads log lines until one satisfies `pred`; returns it. Panics naming `what` after
    /// [`LIMIT`] or when the log ends.
    pub async fn line_matching(
        &mut self,
        what: &str,
        pred: impl Fn(&str) -> bool + Send + 'static,
    ) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = tokio::task::block_in_place(|| self.lines.recv_timeout(left))
                .unwrap_or_else(|e| panic!("no log line for {what} ({e}); log: {:#?}", self.log));
            self.log.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits for the process to exit; panics after [`LIMIT`].
    pub async fn exit(&mut self) -> ExitStatus {
        let give_up = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for voice-host") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "voice-host did not exit"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every log line, once the process has exited (the pipe is then closed).
    pub fn whole_log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(LIMIT) {
            self.log.push(line);
        }
        &self.log
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
