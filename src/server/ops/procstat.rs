//! Readings from `/proc`: a process's CPU seconds, resident memory and open files.
//!
//! Of this process, or of the server `chat-bench` measures.

use std::io;

/// Which process to read: another one (by pid) or this one.
#[derive(Clone, Copy, Debug)]
pub enum Proc {
    Pid(u32),
    Me,
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
            Proc::Me => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU time so far, in seconds (fields 14 and 15 of `stat`).
    pub fn cpu_seconds(self) -> io::Result<f64> {
        let stat = std::fs::read_to_string(self.path("stat"))?;
        parse_cpu_ticks(&stat)
            .map(|ticks| ticks as f64 / clock_ticks_per_sec())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable stat line"))
    }

    /// Resident set size in KiB (`VmRSS` of `status`).
    pub fn rss_kib(self) -> io::Result<u64> {
        let status = std::fs::read_to_string(self.path("status"))?;
        parse_rss_kib(&status)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS line"))
    }

    /// File descriptors open now (entries of `fd/`).
    pub fn open_fds(self) -> io::Result<u64> {
        Ok(std::fs::read_dir(self.path("fd"))?.count() as u64)
    }
}

/// This process's soft open-file limit.
pub fn max_fds() -> Option<u64> {
    crate::server::http::limits::file_limit().map(|l| l.rlim_cur)
}

/// utime + stime in clock ticks. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): fields 14 and 15 are its 12th and 13th words.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  51200 kB\n"), Some(51200));
    }

    #[test]
    fn this_process_can_be_read() {
        let fds = Proc::Me.open_fds().unwrap();
        assert!(fds >= 3, "stdin, stdout, stderr at least: {fds}");
        assert!(max_fds().unwrap() >= fds);
        assert!(Proc::Me.rss_kib().unwrap() > 0);
    }
}
