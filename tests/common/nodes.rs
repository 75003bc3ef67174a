//! One server process, or two nodes sharing one Redis: the same scenario in both modes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use super::process::ServerProcess;
use super::redis_server::RedisServer;

/// One server, or two nodes on one Redis.
pub struct Nodes {
    pub procs: Vec<ServerProcess>,
    flags: Vec<String>,
    dir: tempfile::TempDir,
    pub _redis: Option<RedisServer>,
}

impl Nodes {
    pub fn single(extra: &[&str]) -> Nodes {
        let dir = tempfile::tempdir().unwrap();
        let flags: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let procs = vec![start(&dir, 0, &flags)];
        Nodes {
            procs,
            flags,
            dir,
            _redis: None,
        }
    }

    pub fn cluster(extra: &[&str]) -> Nodes {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec!["--redis-url".to_string(), redis.url()];
        flags.extend(extra.iter().map(|s| s.to_string()));
        let procs = (0..2).map(|i| start(&dir, i, &flags)).collect();
        Nodes {
            procs,
            flags,
            dir,
            _redis: Some(redis),
        }
    }

    /// The address of node `i` (the one server, on one node).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.procs[i % self.procs.len()].addr
    }

    /// Kills node `i` with SIGKILL; on one node, starts it again on the same database.
    pub fn kill(&mut self, i: usize) {
        let i = i % self.procs.len();
        self.procs[i].signal("-KILL");
        if self.procs.len() == 1 {
            let old = self.procs.remove(0);
            old.wait(Duration::from_secs(5));
            self.procs.push(start(&self.dir, 0, &self.flags));
        }
    }
}

impl Nodes {
    /// Kills node `i` with SIGKILL and starts it again on its own database and settings.
    pub fn restart(&mut self, i: usize) {
        let i = i % self.procs.len();
        self.procs[i].signal("-KILL");
        let fresh = start(&self.dir, i, &self.flags);
        let old = std::mem::replace(&mut self.procs[i], fresh);
        old.wait(Duration::from_secs(5));
    }
}

fn start(dir: &tempfile::TempDir, i: usize, flags: &[String]) -> ServerProcess {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    ServerProcess::start(&dir.path().join(format!("n{i}.db")), &flags)
}
