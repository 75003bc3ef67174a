//! Operations: Prometheus metrics, the status page's samples and the process's own figures.

pub mod metrics;
pub mod procstat;
pub mod status;
