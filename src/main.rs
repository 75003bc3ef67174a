//! Server entry point: read the settings, start logging, serve until SIGTERM or SIGINT.

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
    // cargo-leptos passes its site address as LEPTOS_SITE_ADDR: the lowest layer.
    let base = Settings {
        listen: Some(leptos.site_addr),
        ..Settings::default()
    };
    let config = match Config::load(cli, base) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chatroom: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config.log_format);

    let state = match AppState::new(config, leptos).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chatroom: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listen = state.config.listen;
    let listener = match chatroom::server::tcp::listen(listen) {
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
    tracing::info!("listening on http://{addr}");
    match app::serve(listener, state, app::stop_signal()).await {
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

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
