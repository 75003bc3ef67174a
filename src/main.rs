//! Server entry point: read the settings (or only check them), start logging, serve until SIGTERM or SIGINT.

use chatroom::server::config::{Cli, Config, Settings};
use chatroom::server::{app, AppState};
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let leptos = match leptos::prelude::get_configuration(None) {
        Ok(conf) => conf.leptos_options,
        Err(e) => {
            eprintln!("chatroom: invalid LEPTOS_* settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "embed")]
    let leptos = match chatroom::server::assets::prepare(leptos) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("chatroom: {e}");
            return ExitCode::FAILURE;
        }
    };
    // cargo-leptos passes its site address as LEPTOS_SITE_ADDR: the lowest layer.
    let base = Settings {
        listen: Some(leptos.site_addr),
        ..Settings::default()
    };
    let check_only = cli.check_config;
    let config = match Config::load(cli, base) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chatroom: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = if config.tls() {
        let (cert, key) = (&config.tls_cert, &config.tls_key);
        match chatroom::server::http::tls::Tls::load(cert.as_ref(), key.as_ref()) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("chatroom: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    if check_only {
        println!("chatroom: settings are valid");
        return ExitCode::SUCCESS;
    }
    init_logging(&config.log_format, &config.log_level);

    let state = match AppState::new(config, leptos).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chatroom: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen = state.config.listen;
    let listener = match chatroom::server::http::tcp::listen(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chatroom: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let admin = match state.config.admin_addr() {
        Some(at) => match chatroom::server::http::tcp::listen(at) {
            Ok(l) => {
                tracing::info!("metrics and status on http://{at}");
                Some(l)
            }
            Err(e) => {
                eprintln!("chatroom: cannot listen on {at} (admin_listen): {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let redirect = match state.config.https_redirect_addr() {
        Some(at) => match chatroom::server::http::tcp::listen(at) {
            Ok(l) => {
                tracing::info!("redirecting http://{at} to https");
                Some(l)
            }
            Err(e) => {
                eprintln!("chatroom: cannot listen on {at} (https_redirect_listen): {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{addr}");
    let listeners = app::Listeners {
        public: listener,
        admin,
        redirect,
        tls,
    };
    match app::serve_listeners(listeners, state, app::stop_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str, level: &str) {
    use tracing_subscriber::EnvFilter;
    // The level was checked with the settings; RUST_LOG is read only when no level is set.
    let filter = match level {
        "" => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        level => EnvFilter::new(level),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
