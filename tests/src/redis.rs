//! A throwaway `redis-server` on loopback for tests of state shared by replicas: no persistence,
//! a free port, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Redis.
pub struct Redis {
    child: Child,
    /// `redis://127.0.0.1:PORT`
    pub url: String,
}

impl Redis {
    /// Starts one, or `None` (after [`crate::prerequisite::missing`]) when `redis-server` is not
    /// installed.
    pub async fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            crate::prerequisite::missing(
                "redis",
                "redis-server is not installed (Debian: apt-get install redis-server)",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(redis);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
