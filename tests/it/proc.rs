//! Helpers for tests that run the real binary and its peers: free ports on
//! 127.0.0.1, children killed when a test ends, tiny HTTP requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::time::Duration;

/// A port on 127.0.0.1 nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A child process killed (and reaped) when the test ends, passed or not.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:`port`: the status code and the whole response.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((code, text))
}

/// The status of `/healthz`, when something answers.
pub fn healthz(port: u16) -> Option<u16> {
    http_get(port, "/healthz").map(|(c, _)| c)
}

/// A running process the test can kill, signal and wait for; killed (and
/// reaped) when dropped.
pub struct Guard(pub Option<Child>);

impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("process running")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("process running").id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (e.g. "TERM") and waits up to `bound` for the exit status.
    pub fn signal_and_wait(&mut self, sig: &str, bound: Duration) -> std::process::ExitStatus {
        let pid = self.pid();
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid} failed");
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(st) = self.child().try_wait().unwrap() {
                self.0 = None;
                return st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process {pid} did not exit within {bound:?} after SIG{sig}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `attendd ARGS --config CONFIG`, which must succeed; its stdout.
pub fn attendd_ok(config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "attendd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
