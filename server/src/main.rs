//! `server`: reads the configuration, opens and migrates the database, serves quick-chat.
#![recursion_limit = "512"]

use std::process::ExitCode;

use server::{Config, Services, leptos_options, open_database, router, serve_with_shutdown};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: glibc's malloc and free were an eighth of the
/// server's time at full load with 10,000 connections (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("quick-chat: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let db = match open_database(&config).await {
        Ok(db) => db,
        Err(err) => {
            tracing::error!(%err, url = %redact(&config.database_url()), "cannot open the database");
            return ExitCode::FAILURE;
        }
    };
    // `server make-admin <username>`: gives an existing account the administrator role
    // (it may then suspend accounts, see docs/API.md), and exits.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["make-admin", username] => {
            return match app::ssr::accounts::make_admin(&db, username).await {
                Ok(()) => {
                    println!("{username} is now an administrator");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("quick-chat: {}", err.message);
                    ExitCode::FAILURE
                }
            };
        }
        _ => {
            eprintln!("usage: server [make-admin <username>]");
            return ExitCode::from(2);
        }
    }
    let options = leptos_options();
    let addr = config.bind_addr.unwrap_or(options.site_addr);
    let services = match Services::start(&config, db) {
        Ok(services) => services,
        Err(err) => {
            tracing::error!(%err, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let app = router(&services, options, config.max_body_bytes);
    if let Some(addr) = config.metrics_addr {
        server::metrics::install();
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!("metrics on http://{addr}/metrics");
                let metrics = server::metrics::router(&services);
                tokio::spawn(async move { axum::serve(listener, metrics).await });
            }
            Err(err) => {
                tracing::error!(%err, %addr, "cannot listen for metrics");
                return ExitCode::FAILURE;
            }
        }
    }

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(err) => {
            tracing::error!(%err, %addr, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("quick-chat listening on http://{addr}");
    let served = serve_with_shutdown(
        listener,
        app,
        services.relay.clone(),
        terminated(),
        std::time::Duration::from_secs(10),
    );
    if let Err(err) = served.await {
        tracing::error!(%err, "server stopped");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Completes on SIGTERM (a service manager stopping the process, a rolling update) or
/// Ctrl-C.
async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
