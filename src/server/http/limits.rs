//! Connection limits: at most so many WebSocket connections per IP address and in all, refused cleanly before the upgrade.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum LimitError {
    #[error("too many connections from your address")]
    PerIp,
    #[error("the server is at its connection limit; try again later")]
    Total,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections.
pub struct ConnectionLimits {
    counts: Mutex<Counts>,
    max_per_ip: usize,
    max_total: usize,
}

/// One counted connection; dropping it frees its place.
pub struct Permit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_per_ip: usize, max_total: usize) -> Self {
        ConnectionLimits {
            counts: Mutex::new(Counts::default()),
            max_per_ip,
            max_total,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `ip`, if there is one.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, LimitError> {
        let mut c = self.counts();
        if c.total >= self.max_total {
            return Err(LimitError::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(LimitError::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Permit {
            limits: self.clone(),
            ip,
        })
    }

    /// Open connections in all.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// File descriptors kept free for everything but sockets (database, listener, HTTP requests).
const FD_HEADROOM: u64 = 256;

/// This process's open-file limits, soft and hard.
pub fn file_limit() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}

/// Raises the soft open-file limit to the hard one and returns how many connections fit in it.
pub fn connections_from_file_limit() -> usize {
    raise_file_limit().saturating_sub(FD_HEADROOM).max(16) as usize
}

/// Raises this process's soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_file_limit() -> u64 {
    let Some(lim) = file_limit() else {
        return 1024;
    };
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return lim.rlim_max;
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_ip_and_in_all_and_freed_on_drop() {
        let limits = Arc::new(ConnectionLimits::new(2, 3));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = limits.acquire(a).unwrap();
        let _a2 = limits.acquire(a).unwrap();
        assert_eq!(limits.acquire(a).err(), Some(LimitError::PerIp));
        let _b1 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).err(), Some(LimitError::Total));
        drop(a1);
        assert_eq!(limits.open(), 2);
        assert!(limits.acquire(a).is_ok());
    }

    #[test]
    fn the_file_limit_leaves_headroom() {
        let n = connections_from_file_limit();
        assert!(n >= 16);
    }
}
