//! Runtime settings: defaults, overlaid by `Leptos.toml`, then `CHAT_*` environment variables, then command-line flags.

use clap::Parser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Declares every setting once: its type, default, environment variable and help text.
/// Generates [`Settings`] (all optional: one layer as a file, env or flags give it) and
/// [`Config`] (the resolved values).
macro_rules! settings {
    ($( #[doc = $doc:literal] $name:ident : $ty:ty = $default:literal, $env:literal; )*) => {
        /// One layer of settings; a missing field leaves the layer below in force.
        #[derive(Debug, Default, Clone, clap::Args, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $(
                #[doc = $doc]
                #[arg(long, env = $env, help = concat!($doc, " [default: ", $default, "]"))]
                pub $name: Option<$ty>,
            )*
        }

        /// The resolved settings the server runs with.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( #[doc = $doc] pub $name: $ty, )*
        }

        impl Settings {
            /// `self` over `lower`: each field set here wins.
            pub fn over(self, lower: Settings) -> Settings {
                Settings { $( $name: self.$name.or(lower.$name), )* }
            }
        }

        impl Config {
            /// Fills every unset field with its default.
            pub fn resolve(s: Settings) -> Config {
                Config {
                    $( $name: s.$name.unwrap_or_else(|| {
                        $default.parse().unwrap_or_else(|_| panic!("default of {} must parse", stringify!($name)))
                    }), )*
                }
            }
        }
    };
}

settings! {
    /// Address to listen on (HTTP and WebSocket).
    listen: SocketAddr = "127.0.0.1:3000", "CHAT_LISTEN";
    /// Longest message accepted, in characters.
    max_message_chars: usize = "2000", "CHAT_MAX_MESSAGE_CHARS";
    /// Messages shown on entering a room, and per page of older history.
    recent_messages: usize = "50", "CHAT_RECENT_MESSAGES";
    /// SQLite database holding the message log (created with its folder on first start).
    data_path: PathBuf = "data/chat.db", "CHAT_DATA_PATH";
    /// Largest size of the database in MiB, after which new messages are refused (0: no limit).
    max_db_mb: u64 = "0", "CHAT_MAX_DB_MB";
    /// Size in MiB past which the SQLite WAL is checkpointed and truncated, even under steady writes (0: only at shutdown).
    wal_limit_mb: u64 = "64", "CHAT_WAL_LIMIT_MB";
    /// Days messages are kept; older ones are deleted in the background (0: kept forever).
    retention_days: u64 = "0", "CHAT_RETENTION_DAYS";
    /// Most missed messages replayed on reconnect; beyond it the client reloads the latest page.
    max_resume_gap: usize = "1000", "CHAT_MAX_RESUME_GAP";
    /// Milliseconds a member whose connection dropped stays listed, so that a quick reconnect shows no leave/join.
    presence_grace_ms: u64 = "10000", "CHAT_PRESENCE_GRACE_MS";
    /// Most members one room admits.
    max_room_members: usize = "25000", "CHAT_MAX_ROOM_MEMBERS";
    /// Rooms up to this size list every member and announce each join and leave; bigger rooms list this many and show a live count.
    presence_list_limit: usize = "200", "CHAT_PRESENCE_LIST_LIMIT";
    /// Seconds a name stays reserved between joining and the socket's arrival.
    name_reservation_secs: u64 = "60", "CHAT_NAME_RESERVATION_SECS";
    /// Outgoing frames queued per connection before it counts as a slow consumer.
    outgoing_queue_frames: usize = "1024", "CHAT_OUTGOING_QUEUE_FRAMES";
    /// Outgoing bytes queued per connection before it counts as a slow consumer.
    outgoing_queue_bytes: usize = "1048576", "CHAT_OUTGOING_QUEUE_BYTES";
    /// Seconds between heartbeats (a WebSocket ping and a heartbeat event) on every connection.
    ping_interval_secs: u64 = "25", "CHAT_PING_INTERVAL_SECS";
    /// Seconds after a heartbeat within which a connection must send something (a pong will do), or be closed.
    pong_timeout_secs: u64 = "10", "CHAT_PONG_TIMEOUT_SECS";
    /// TCP keepalive: idle seconds before the first probe.
    tcp_keepalive_idle_secs: u64 = "60", "CHAT_TCP_KEEPALIVE_IDLE_SECS";
    /// TCP keepalive: seconds between probes.
    tcp_keepalive_interval_secs: u64 = "30", "CHAT_TCP_KEEPALIVE_INTERVAL_SECS";
    /// TCP keepalive: unanswered probes before the connection is dropped.
    tcp_keepalive_probes: u32 = "3", "CHAT_TCP_KEEPALIVE_PROBES";
    /// Messages a connection may send per second, on average.
    rate_per_sec: u32 = "10", "CHAT_RATE_PER_SEC";
    /// Messages a connection may send in a burst.
    rate_burst: u32 = "20", "CHAT_RATE_BURST";
    /// Messages refused for rate, without a second's pause between refusals, after which the connection is closed (4029).
    flood_limit: u32 = "50", "CHAT_FLOOD_LIMIT";
    /// Most open WebSocket connections from one IP address.
    max_connections_per_ip: usize = "64", "CHAT_MAX_CONNECTIONS_PER_IP";
    /// Most open WebSocket connections in all (0: from the open-file limit, leaving headroom).
    max_connections: usize = "0", "CHAT_MAX_CONNECTIONS";
    /// Origins allowed to open sockets, comma-separated, e.g. "https://chat.example.com" (empty: the server's own host only).
    allowed_origins: String = "", "CHAT_ALLOWED_ORIGINS";
    /// On shutdown, clients are told to reconnect after a random delay up to this many milliseconds.
    restart_spread_ms: u64 = "5000", "CHAT_RESTART_SPREAD_MS";
    /// Largest WebSocket frame or message accepted, in bytes.
    max_frame_bytes: usize = "16384", "CHAT_MAX_FRAME_BYTES";
    /// Days a session cookie lasts.
    session_days: u64 = "30", "CHAT_SESSION_DAYS";
    /// Secret that signs session cookies (empty: one kept in the database).
    session_secret: String = "", "CHAT_SESSION_SECRET";
    /// Seconds to wait for connections to close on shutdown.
    shutdown_deadline_secs: u64 = "10", "CHAT_SHUTDOWN_DEADLINE_SECS";
    /// After SIGTERM, milliseconds to go on serving with /readyz at 503 before closing sockets, so that load balancers stop sending clients first.
    drain_delay_ms: u64 = "0", "CHAT_DRAIN_DELAY_MS";
    /// Address for /metrics and /status, e.g. "127.0.0.1:9100" (empty: both on `listen`).
    admin_listen: String = "", "CHAT_ADMIN_LISTEN";
    /// Bearer token of the admin API under /api/admin (empty, with no `admin_token_file`: the admin API is off). At least 16 characters.
    admin_token: String = "", "CHAT_ADMIN_TOKEN";
    /// File holding the admin API's token (its first line), instead of `admin_token`.
    admin_token_file: String = "", "CHAT_ADMIN_TOKEN_FILE";
    /// The first member of a new room gets a one-time link that makes them its owner.
    room_owner_on_create: bool = "false", "CHAT_ROOM_OWNER_ON_CREATE";
    /// Serve /metrics and /status on `listen` too, when no `admin_listen` is set (off: they answer 404 there).
    metrics_public: bool = "false", "CHAT_METRICS_PUBLIC";
    /// Sessions (joins through the form) one IP address may start per minute, on average.
    joins_per_minute: u32 = "10", "CHAT_JOINS_PER_MINUTE";
    /// Sessions one IP address may start in a burst.
    join_burst: u32 = "10", "CHAT_JOIN_BURST";
    /// Names one IP address may hold at once in reservations not yet taken up by a socket.
    max_reservations_per_ip: usize = "10", "CHAT_MAX_RESERVATIONS_PER_IP";
    /// Most rooms the server keeps (with members or history); a join that would make one more is refused (0: no limit).
    max_rooms: usize = "10000", "CHAT_MAX_ROOMS";
    /// New rooms one IP address may make per hour.
    new_rooms_per_hour: u32 = "20", "CHAT_NEW_ROOMS_PER_HOUR";
    /// Seconds a client has to send a request's head (also the longest wait for a kept-alive HTTP/1 connection's next request).
    http_header_timeout_secs: u64 = "10", "CHAT_HTTP_HEADER_TIMEOUT_SECS";
    /// Seconds an HTTP connection may stay open with no request in flight.
    http_idle_timeout_secs: u64 = "60", "CHAT_HTTP_IDLE_TIMEOUT_SECS";
    /// Most open HTTP connections from one IP address (WebSockets count apart, under max_connections_per_ip).
    max_http_connections_per_ip: usize = "128", "CHAT_MAX_HTTP_CONNECTIONS_PER_IP";
    /// Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto count, comma-separated addresses or CIDR blocks (empty: none).
    trust_proxy: String = "", "CHAT_TRUST_PROXY";
    /// TLS certificate chain (PEM): with tls_key, `listen` serves https and wss (empty: plain HTTP).
    tls_cert: String = "", "CHAT_TLS_CERT";
    /// TLS private key (PEM) of tls_cert. Both files are read again on SIGHUP.
    tls_key: String = "", "CHAT_TLS_KEY";
    /// Address of a plain HTTP listener that redirects every request to https, e.g. "0.0.0.0:80" (empty: none).
    https_redirect_listen: String = "", "CHAT_HTTPS_REDIRECT_LISTEN";
    /// Redis URL, e.g. "redis://127.0.0.1:6379/": turns on cluster mode, where every node on this Redis is one chat service (empty: this node alone, on SQLite).
    redis_url: String = "", "CHAT_REDIS_URL";
    /// Cluster mode: messages kept per room in Redis (history and resume reach this far back).
    redis_stream_len: usize = "10000", "CHAT_REDIS_STREAM_LEN";
    /// Cluster mode: seconds within which the members of a node that stopped (or lost Redis) leave the other nodes' lists.
    presence_ttl_secs: u64 = "15", "CHAT_PRESENCE_TTL_SECS";
    /// Room that old PHP/Swoole chat clients join: they connect with a WebSocket upgrade on `/` and speak its JSON protocol (empty: the old protocol is off).
    legacy_room: String = "lobby", "CHAT_LEGACY_ROOM";
    /// Origins allowed to open old-protocol sockets, comma-separated ("*": any; these sockets carry no session cookie, so no page can act for a visitor).
    legacy_origins: String = "*", "CHAT_LEGACY_ORIGINS";
    /// Time zone of the HH:MM times sent to old-protocol clients (an IANA name, e.g. Europe/Berlin).
    time_zone: String = "UTC", "CHAT_TIME_ZONE";
    /// Log format: text or json.
    log_format: String = "text", "CHAT_LOG_FORMAT";
    /// Log filter, e.g. "debug" or "info,chatroom=debug" (empty: RUST_LOG, else "info").
    log_level: String = "", "CHAT_LOG_LEVEL";
    /// Log the text of every chat message received (for debugging; off keeps message text out of logs).
    log_message_text: bool = "false", "CHAT_LOG_MESSAGE_TEXT";
}

/// Command line of the server.
#[derive(Debug, Parser)]
#[command(version, about = "Real-time chat room server (SSR + WebSocket)")]
pub struct Cli {
    /// Settings file (TOML) [default: Leptos.toml, if present]
    #[arg(long, env = "CHAT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Check the settings (file, environment, flags) and exit: 0 if valid, 1 with the error if not
    #[arg(long)]
    pub check_config: bool,

    #[command(flatten)]
    pub settings: Settings,
}

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Default settings file, read when present.
pub const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";

/// Reads a settings file. A missing default file is no error; a missing named file is.
pub fn read_file(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Settings::default())
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
}

impl Config {
    /// Flags and environment over the file over `base` (e.g. cargo-leptos's site address) over defaults.
    pub fn load(cli: Cli, base: Settings) -> Result<Config, ConfigError> {
        let file = read_file(cli.config.as_deref())?;
        let config = Config::resolve(cli.settings.over(file).over(base));
        config.check()?;
        Ok(config)
    }

    /// The admin API's token: `admin_token`, or the first line of `admin_token_file`
    /// (`None`: the admin API is off). Shorter than 16 characters is refused.
    pub fn admin_token(&self) -> Result<Option<String>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "admin_token",
            reason,
        };
        let token = if self.admin_token_file.is_empty() {
            self.admin_token.trim().to_string()
        } else {
            let text = std::fs::read_to_string(&self.admin_token_file)
                .map_err(|e| invalid(format!("cannot read {}: {e}", self.admin_token_file)))?;
            text.lines().next().unwrap_or("").trim().to_string()
        };
        match token.chars().count() {
            0 => Ok(None),
            1..16 => Err(invalid("must be at least 16 characters".into())),
            _ => Ok(Some(token)),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.admin_token()?;
        let positive = [
            ("max_message_chars", self.max_message_chars),
            ("max_room_members", self.max_room_members),
            ("outgoing_queue_frames", self.outgoing_queue_frames),
            ("max_frame_bytes", self.max_frame_bytes),
            ("outgoing_queue_bytes", self.outgoing_queue_bytes),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("ping_interval_secs", self.ping_interval_secs as usize),
            ("rate_per_sec", self.rate_per_sec as usize),
            ("rate_burst", self.rate_burst as usize),
            ("recent_messages", self.recent_messages),
            ("max_resume_gap", self.max_resume_gap),
            ("joins_per_minute", self.joins_per_minute as usize),
            ("join_burst", self.join_burst as usize),
            ("max_reservations_per_ip", self.max_reservations_per_ip),
            ("new_rooms_per_hour", self.new_rooms_per_hour as usize),
            (
                "http_header_timeout_secs",
                self.http_header_timeout_secs as usize,
            ),
            (
                "http_idle_timeout_secs",
                self.http_idle_timeout_secs as usize,
            ),
            (
                "max_http_connections_per_ip",
                self.max_http_connections_per_ip,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.admin_addr() == Some(self.listen) {
            return Err(ConfigError::Invalid {
                name: "admin_listen",
                reason: format!(
                    "{} is `listen` itself; give the admin address its own port",
                    self.listen
                ),
            });
        }
        if !self.admin_listen.is_empty() && self.admin_addr().is_none() {
            return Err(ConfigError::Invalid {
                name: "admin_listen",
                reason: format!(
                    "{:?} is not an address like 127.0.0.1:9100",
                    self.admin_listen
                ),
            });
        }
        self.check_http()?;
        if !self.log_level.is_empty() {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
                return Err(ConfigError::Invalid {
                    name: "log_level",
                    reason: e.to_string(),
                });
            }
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid {
                name: "log_format",
                reason: format!("{:?} is neither text nor json", self.log_format),
            });
        }
        if !self.legacy_room.is_empty() && crate::rules::validate_room(&self.legacy_room).is_err() {
            return Err(ConfigError::Invalid {
                name: "legacy_room",
                reason: format!(
                    "{:?}: {}",
                    self.legacy_room,
                    crate::rules::RoomError::Invalid
                ),
            });
        }
        if let Err(reason) = crate::server::clock::Clock::new(&self.time_zone) {
            return Err(ConfigError::Invalid {
                name: "time_zone",
                reason,
            });
        }
        Ok(())
    }

    /// The HTTP settings: proxies, TLS files in pairs, the redirect address.
    fn check_http(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if let Err(e) = crate::server::http::proxy::TrustedProxies::parse(&self.trust_proxy) {
            return invalid("trust_proxy", e.to_string());
        }
        if self.tls_cert.trim().is_empty() != self.tls_key.trim().is_empty() {
            return invalid(
                "tls_cert",
                "tls_cert and tls_key go together: set both or neither".into(),
            );
        }
        if !self.https_redirect_listen.trim().is_empty() {
            if self.https_redirect_addr().is_none() {
                return invalid(
                    "https_redirect_listen",
                    format!(
                        "{:?} is not an address like 0.0.0.0:80",
                        self.https_redirect_listen
                    ),
                );
            }
            if !self.tls() {
                return invalid(
                    "https_redirect_listen",
                    "needs tls_cert and tls_key: there is no https to redirect to".into(),
                );
            }
        }
        Ok(())
    }

    /// Is TLS on (a certificate and key are set)?
    pub fn tls(&self) -> bool {
        !self.tls_cert.trim().is_empty() && !self.tls_key.trim().is_empty()
    }

    /// Where plain HTTP is redirected to https, if anywhere.
    pub fn https_redirect_addr(&self) -> Option<SocketAddr> {
        self.https_redirect_listen.trim().parse().ok()
    }

    /// Where /metrics and /status are served apart from the app, if anywhere.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listen.trim().parse().ok()
    }

    /// Defaults only, for tests and embedding.
    pub fn defaults() -> Config {
        Config::resolve(Settings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(c.max_message_chars, crate::rules::DEFAULT_MAX_MESSAGE_CHARS);
        assert_eq!(c.recent_messages, 50);
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.toml");
        std::fs::write(&path, "max_message_chars = 500\nrecent_messages = 10\n").unwrap();
        let cli = Cli::parse_from([
            "chatroom",
            "--config",
            path.to_str().unwrap(),
            "--recent-messages",
            "7",
        ]);
        let c = Config::load(cli, Settings::default()).unwrap();
        assert_eq!(c.max_message_chars, 500, "file over default");
        assert_eq!(c.recent_messages, 7, "flag over file");
        assert_eq!(c.max_room_members, 25000, "default where nothing is set");
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "no_such_setting = 1\n").unwrap();
        let cli = Cli::parse_from(["chatroom", "--config", path.to_str().unwrap()]);
        let err = Config::load(cli, Settings::default()).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");

        let missing = dir.path().join("missing.toml");
        let cli = Cli::parse_from(["chatroom", "--config", missing.to_str().unwrap()]);
        assert!(matches!(
            Config::load(cli, Settings::default()),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn the_shipped_leptos_toml_is_valid_and_names_every_setting() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml");
        let cli = Cli::parse_from(["chatroom", "--config", path]);
        assert!(Config::load(cli, Settings::default()).is_ok());
        let text = std::fs::read_to_string(path).unwrap();
        let defaults = format!("{:?}", Config::defaults());
        // Every field of Config is documented in the file.
        for field in defaults
            .trim_start_matches("Config {")
            .split(", ")
            .filter_map(|kv| kv.trim().split(':').next())
        {
            assert!(
                text.contains(&format!("# {field} =")),
                "Leptos.toml lacks {field}"
            );
        }
    }

    #[test]
    fn unknown_time_zones_and_bad_legacy_rooms_are_refused() {
        for (flag, value, name) in [
            ("--time-zone", "Mars/Olympus", "time_zone"),
            ("--legacy-room", "No Spaces", "legacy_room"),
        ] {
            let cli = Cli::parse_from(["chatroom", flag, value]);
            match Config::load(cli, Settings::default()) {
                Err(ConfigError::Invalid { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{flag} {value}: {other:?}"),
            }
        }
        let cli = Cli::parse_from([
            "chatroom",
            "--time-zone",
            "Europe/Berlin",
            "--legacy-room",
            "",
        ]);
        assert!(Config::load(cli, Settings::default()).is_ok());
    }

    #[test]
    fn http_settings_are_checked() {
        let refused = |args: &[&str]| match Config::load(
            Cli::parse_from([&["chatroom"], args].concat()),
            Settings::default(),
        ) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(refused(&["--trust-proxy", "10.0.0.0/40"]), "trust_proxy");
        assert_eq!(refused(&["--tls-cert", "cert.pem"]), "tls_cert");
        assert_eq!(
            refused(&["--https-redirect-listen", "0.0.0.0:80"]),
            "https_redirect_listen"
        );
        assert_eq!(
            refused(&["--http-header-timeout-secs", "0"]),
            "http_header_timeout_secs"
        );
        let cli = Cli::parse_from([
            "chatroom",
            "--trust-proxy",
            "127.0.0.1, 10.0.0.0/8",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--https-redirect-listen",
            "0.0.0.0:80",
        ]);
        let c = Config::load(cli, Settings::default()).unwrap();
        assert!(c.tls());
        assert_eq!(c.https_redirect_addr(), Some("0.0.0.0:80".parse().unwrap()));
    }

    #[test]
    fn an_admin_address_on_the_listen_address_is_refused() {
        let cli = Cli::parse_from([
            "chatroom",
            "--listen",
            "127.0.0.1:4000",
            "--admin-listen",
            "127.0.0.1:4000",
        ]);
        assert!(matches!(
            Config::load(cli, Settings::default()),
            Err(ConfigError::Invalid {
                name: "admin_listen",
                ..
            })
        ));
    }

    #[test]
    fn zero_limits_are_refused() {
        let cli = Cli::parse_from(["chatroom", "--max-frame-bytes", "0"]);
        assert!(matches!(
            Config::load(cli, Settings::default()),
            Err(ConfigError::Invalid {
                name: "max_frame_bytes",
                ..
            })
        ));
    }
}
