//! HTTP serving below the routes: accept loop, TLS, TCP options, proxies, limits and headers.

pub mod abuse;
pub mod api_limits;
pub mod headers;
pub mod limits;
pub mod proxy;
pub mod serve;
pub mod tcp;
pub mod tls;
