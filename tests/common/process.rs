//! A real server process (the `chatroom` binary) on a temporary database, for restart and crash tests.
#![allow(dead_code)]

use chatroom::server::ops::procstat::Proc;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every line the server has logged (to stdout) so far.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary on `db` with extra flags, and waits until it listens.
    pub fn start(db: &Path, flags: &[&str]) -> ServerProcess {
        // Defaults for tests, unless `flags` sets them.
        let defaults = [
            ("--listen", "127.0.0.1:0"),
            ("--presence-grace-ms", "0"),
            ("--rate-per-sec", "1000000"),
            ("--rate-burst", "1000000"),
            ("--joins-per-minute", "1000000"),
            ("--join-burst", "1000000"),
            ("--max-reservations-per-ip", "1000000"),
            ("--new-rooms-per-hour", "1000000"),
            ("--metrics-public", "true"),
        ];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatroom"));
        for (flag, value) in defaults {
            if !flags.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        let mut child = cmd
            .arg("--data-path")
            .arg(db)
            .args(flags)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if !sent {
                    let rest = line.split("listening on http://").nth(1);
                    if let Some(rest) = rest.or(line.split("listening on https://").nth(1)) {
                        let addr: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                            .collect();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server reports its address")
            .parse()
            .expect("a socket address");
        ServerProcess { child, addr, logs }
    }

    /// The lines logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        Proc::Pid(self.child.id()).open_fds().unwrap_or(0) as usize
    }

    /// Open sockets of the server process (listeners and connections).
    pub fn open_sockets(&self) -> usize {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())) else {
            return 0;
        };
        fds.filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        Proc::Pid(self.child.id()).rss_kib().unwrap_or(0)
    }

    /// Sockets on the server's port in CLOSE_WAIT (the peer closed, the server did not).
    pub fn close_wait(&self) -> usize {
        let port = format!(":{:04X}", self.addr.port());
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                t.lines()
                    .skip(1)
                    .filter(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() > 3 && f[1].ends_with(&port) && f[3] == "08"
                    })
                    .count()
            })
            .sum()
    }

    /// The kernel's timer field (`tr`) of each established socket on the server's port whose
    /// peer port is `peer_port`: 2 means a keepalive timer is running.
    pub fn timer_of(&self, peer_port: u16) -> Option<u8> {
        let local = format!(":{:04X}", self.addr.port());
        let remote = format!(":{:04X}", peer_port);
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        table.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 5 && f[1].ends_with(&local) && f[2].ends_with(&remote) && f[3] == "01")
                .then(|| {
                    f[5].split(':')
                        .next()
                        .and_then(|t| u8::from_str_radix(t, 16).ok())
                })
                .flatten()
        })
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the process to exit.
    pub fn wait(mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < within,
                "server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary expecting it to fail at start-up; returns its exit status and stderr.
pub fn start_failure(db: &Path) -> (ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-path")
        .arg(db)
        .env("NO_COLOR", "1")
        .output()
        .expect("binary runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
