//! `apiserver`: serves the API compiled from `spec/` over HTTPS.

use clap::{Parser, ValueEnum};
use server::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use server::storage::memory::MemoryStorage;
use std::path::PathBuf;
use std::sync::Arc;

/// Storage backends.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StorageKind {
    /// In memory: fast, and gone at restart.
    Memory,
    /// Durable, in <data-dir>/store.redb: every acknowledged write survives a crash.
    Embedded,
}

/// A Kubernetes API server for the resources declared in spec/.
#[derive(Debug, Parser)]
#[command(name = "apiserver", version, about, long_about = None)]
struct Flags {
    /// The IP address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: std::net::IpAddr,
    /// The port to serve HTTPS on (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Directory for everything the server keeps: certificates, the kubeconfig, and (with a
    /// durable backend) data.
    #[arg(long, default_value = "apiserver-data")]
    data_dir: PathBuf,
    /// Directory of the self-signed CA and serving certificate (created when missing). Ignored
    /// with --tls-cert-file. Default: <data-dir>/certs.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Serving certificate (PEM). With --tls-private-key-file, replaces the self-signed one.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// Private key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Where to write a kubeconfig for this server. Default: <data-dir>/kubeconfig.
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Storage backend.
    #[arg(long, value_enum, default_value = "embedded")]
    storage: StorageKind,
    /// How many past revisions storage keeps for snapshot lists and watch resumption; older
    /// ones are compacted (410 Expired).
    #[arg(long, default_value_t = server::storage::memory::DEFAULT_HISTORY)]
    storage_history: usize,
    /// Log output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    if flags.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if let Err(e) = run(flags).await {
        tracing::error!("{e}");
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let cert_dir = flags.cert_dir.clone().unwrap_or_else(|| flags.data_dir.join("certs"));
    let certs = match (&flags.tls_cert_file, &flags.tls_private_key_file) {
        (Some(cert), Some(key)) => server::tls::load(cert, key)?,
        _ => {
            let dir = cert_dir.clone();
            let mut hosts = vec!["127.0.0.1".to_string(), "localhost".to_string(), "::1".to_string()];
            if !flags.bind_address.is_unspecified() {
                hosts.push(flags.bind_address.to_string());
            }
            server::tls::self_signed(&dir, &hosts)?
        }
    };
    let tls = server::tls::server_config(&certs)?;
    let storage: Arc<dyn server::storage::Storage> = match flags.storage {
        StorageKind::Memory => Arc::new(MemoryStorage::with_history(flags.storage_history)),
        StorageKind::Embedded => {
            let options = EmbeddedOptions { history: flags.storage_history, ..EmbeddedOptions::default() };
            Arc::new(EmbeddedStorage::open(&flags.data_dir, options)?)
        }
    };
    let app = server::app(server::AppState::new(storage));
    let listener = tokio::net::TcpListener::bind((flags.bind_address, flags.secure_port)).await?;
    let address = listener.local_addr()?;
    let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = format!("https://{host}:{}", address.port());
    let kubeconfig = flags.write_kubeconfig.clone().unwrap_or_else(|| flags.data_dir.join("kubeconfig"));
    // The local user's identity: an admin certificate from our CA (a fresh CA when the serving
    // certificate was given by flags, so the kubeconfig always has one).
    if certs.ca_pem.is_none() {
        server::tls::self_signed(&cert_dir, &["127.0.0.1".to_string()])?;
    }
    let (client_cert, client_key) = server::tls::client_certificate(&cert_dir, "admin", &["system:masters"])?;
    server::tls::write_kubeconfig(&kubeconfig, &url, certs.ca_pem.as_deref(), (&client_cert, &client_key))?;
    tracing::info!(%url, kubeconfig = %kubeconfig.display(), "serving");
    println!("Serving on {url}");
    println!("Point kubectl at it with:  export KUBECONFIG={}", kubeconfig.display());
    server::serve::serve_tls(listener, tls, app, shutdown_signal()).await;
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
