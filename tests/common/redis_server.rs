//! A real `redis-server` on a free loopback port, started and stopped by the test, its data in a temporary folder.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts Redis with an append-only file synced on every write, as a deployment that
    /// must not lose acknowledged messages would run it.
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/setup --test installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while !self.answers() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Runs one inline command (e.g. `CLIENT KILL TYPE pubsub`); returns the reply's first line.
    pub fn command(&self, line: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            reply.push(byte[0]);
        }
        String::from_utf8_lossy(&reply).trim().to_string()
    }

    /// Runs a command whose reply is an array of strings (nested arrays are flattened, as
    /// `XRANGE`'s entries); returns them.
    pub fn strings(&self, args: &[&str]) -> Vec<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        read_reply(&mut std::io::BufReader::new(s), &mut out);
        out
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills Redis (its append-only file keeps what it acknowledged).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one RESP reply, pushing its strings (flattened) to `out`.
fn read_reply(r: &mut std::io::BufReader<TcpStream>, out: &mut Vec<String>) {
    let mut line = String::new();
    std::io::BufRead::read_line(r, &mut line).unwrap();
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'*') => {
            let n: i64 = line[1..].parse().unwrap();
            for _ in 0..n.max(0) {
                read_reply(r, out);
            }
        }
        Some(b'$') => {
            let len: i64 = line[1..].parse().unwrap();
            if len >= 0 {
                let mut buf = vec![0u8; len as usize + 2];
                std::io::Read::read_exact(r, &mut buf).unwrap();
                out.push(String::from_utf8_lossy(&buf[..len as usize]).into_owned());
            }
        }
        _ => out.push(line[1..].to_string()),
    }
}
