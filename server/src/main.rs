//! `apiserver`: serves the API compiled from `spec/` over HTTPS.

use clap::{Args, Parser, ValueEnum};
use server::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use server::storage::etcd::{EtcdOptions, EtcdStorage};
use server::storage::memory::MemoryStorage;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc instead of the system allocator: a request allocates and frees many small strings
/// and maps, and with glibc's malloc freeing them cost more than building them (see
/// `docs/benchmarks.md`), and long runs left the heap fragmented.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Storage backends.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StorageKind {
    /// In memory: fast, and gone at restart.
    Memory,
    /// Durable, in <data-dir>/store.redb: every acknowledged write survives a crash.
    Embedded,
    /// In an etcd v3 cluster (--etcd-servers), which several servers can share.
    Etcd,
}

/// A Kubernetes API server for the resources declared in spec/.
#[derive(Debug, Parser)]
#[command(name = "apiserver", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Flags {
    #[command(subcommand)]
    command: Option<Subcommand>,
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
    /// With --storage etcd: the etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// With --storage etcd: the prefix of every key in etcd.
    #[arg(long, default_value = server::storage::etcd::DEFAULT_PREFIX)]
    etcd_prefix: String,
    /// With --storage etcd: how often etcd's history is compacted (one interval of it is kept
    /// for watches and paging); 0 disables compaction by this server.
    #[arg(long, default_value = "5m", value_parser = server::duration::parse_duration)]
    etcd_compaction_interval: std::time::Duration,
    /// Bytes of rendered list items kept to answer the same LIST again while its objects are
    /// unchanged (lists of 64 KiB and more; least recently used go first); 0 turns it off.
    #[arg(long, default_value_t = server::engine::list_cache::DEFAULT_BUDGET)]
    list_cache_bytes: usize,
    /// Log output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(flatten)]
    limits: LimitFlags,
    #[command(flatten)]
    aggregation: AggregationFlags,
    #[command(flatten)]
    auth: AuthFlags,
}

/// Limits on requests, with kube-apiserver's names and defaults (see docs/hardening.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
struct LimitFlags {
    /// The most read-only requests (get, list) served at once; more get 429. Watches do not
    /// count, and users in system:masters are never refused. 0 = no limit.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// The most mutating requests (create, update, patch, delete) served at once; more get
    /// 429. 0 = no limit.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: usize,
    /// How long a request that is not a watch may take before it gets 504; clients may ask
    /// for less with ?timeout=. 0 = no limit.
    #[arg(long, default_value = "1m0s", value_parser = server::duration::parse_duration)]
    request_timeout: std::time::Duration,
    /// Seconds: a watch without timeoutSeconds lasts between one and two times this.
    #[arg(long, default_value_t = 1800)]
    min_request_timeout: u64,
    /// The most concurrent streams a client may open on one HTTP/2 connection (the default
    /// of aggregated API servers, whose front proxy multiplexes many watches on one connection).
    #[arg(long, default_value_t = 1000)]
    http2_max_streams_per_connection: u32,
}

impl LimitFlags {
    fn limits(&self) -> server::limits::Limits {
        server::limits::Limits {
            max_requests_inflight: self.max_requests_inflight,
            max_mutating_requests_inflight: self.max_mutating_requests_inflight,
            request_timeout: self.request_timeout,
            min_request_timeout: std::time::Duration::from_secs(self.min_request_timeout),
        }
    }
}

/// What else the binary does besides serving.
#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Print (or write) the manifests that deploy this API into a cluster behind
    /// kube-apiserver's aggregator: Namespace, ServiceAccount and RBAC, the serving Secret,
    /// Deployment, Service, and one APIService per group-version with the CA as caBundle.
    Manifests(ManifestsFlags),
}

/// `apiserver manifests`.
#[derive(Debug, Args)]
struct ManifestsFlags {
    /// The namespace to run in.
    #[arg(long, default_value = "specapi-system")]
    namespace: String,
    /// The name of the ServiceAccount, Deployment, Service and Secret.
    #[arg(long, default_value = "specapi-apiserver")]
    name: String,
    /// The server's container image (built with the Containerfile).
    #[arg(long, default_value = "localhost/specapi-apiserver:latest")]
    image: String,
    /// Directory of the CA and the serving certificate for <name>.<namespace>.svc: created
    /// when missing, reused after, so the APIServices' caBundle stays the same. Keep it: its CA
    /// key can issue certificates the cluster trusts for this API.
    #[arg(long, default_value = "deploy-certs")]
    cert_dir: PathBuf,
    /// Write one file per manifest (numbered in apply order) into this directory instead of
    /// printing one YAML stream.
    #[arg(long)]
    output_dir: Option<PathBuf>,
}

/// Running behind kube-apiserver's aggregator (see docs/aggregation.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Aggregation")]
struct AggregationFlags {
    /// Serve as an extension API server of a Kubernetes cluster: tokens are reviewed and
    /// requests authorized by the cluster (unless the flags below say otherwise), the front
    /// proxy and client CA are read from kube-system/extension-apiserver-authentication, objects
    /// may only be created in namespaces that exist there, and the objects of deleted namespaces
    /// are removed.
    #[arg(long)]
    aggregated: bool,
    /// With --aggregated: kubeconfig of the cluster's kube-apiserver. Default: the pod's
    /// service account (in-cluster configuration).
    #[arg(long, requires = "aggregated")]
    kubeconfig: Option<PathBuf>,
}

/// Authentication and authorization, with kube-apiserver's flag names (see docs/auth.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Authentication and authorization")]
struct AuthFlags {
    /// CA bundle (PEM) whose client certificates authenticate users: the user is the
    /// certificate's CN, its groups the O fields. The server's own CA (<cert-dir>/ca.crt, which
    /// signs the admin certificate of the kubeconfig it writes) is always trusted as well.
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Static bearer tokens, CSV lines of token,user,uid,"group1,group2".
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// CA bundle (PEM) of front proxies (kube-apiserver's aggregator). Only connections with a
    /// client certificate from this CA may pass an identity in the request headers below; on any
    /// other connection those headers are ignored.
    #[arg(long)]
    requestheader_client_ca_file: Option<PathBuf>,
    /// Common names a front proxy's certificate may have (comma-separated); empty allows any
    /// certificate of --requestheader-client-ca-file.
    #[arg(long, value_delimiter = ',')]
    requestheader_allowed_names: Vec<String>,
    /// Headers holding the user name (comma-separated; the first present wins).
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-User")]
    requestheader_username_headers: Vec<String>,
    /// Headers holding the user's uid (comma-separated).
    #[arg(long, value_delimiter = ',')]
    requestheader_uid_headers: Vec<String>,
    /// Headers holding the groups (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Group")]
    requestheader_group_headers: Vec<String>,
    /// Prefixes of headers holding extra attributes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Extra-")]
    requestheader_extra_headers_prefix: Vec<String>,
    /// Kubeconfig of a kube-apiserver that checks bearer tokens with TokenReviews.
    #[arg(long)]
    authentication_kubeconfig: Option<PathBuf>,
    /// How long TokenReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = server::duration::parse_duration)]
    authentication_token_webhook_cache_ttl: std::time::Duration,
    /// Serve requests without credentials as system:anonymous (group system:unauthenticated);
    /// off: they get 401, except --authorization-always-allow-paths.
    #[arg(long, default_value = "false", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Authorization modes, asked in order (comma-separated): AlwaysAllow, AlwaysDeny, RBAC,
    /// Webhook. Members of system:masters are always allowed. Default: RBAC; with --aggregated,
    /// Webhook (the cluster decides).
    #[arg(long, value_delimiter = ',')]
    authorization_mode: Vec<String>,
    /// RBAC policy: a YAML stream of rbac.authorization.k8s.io/v1 Roles, ClusterRoles,
    /// RoleBindings and ClusterRoleBindings, added to the built-in policy.
    #[arg(long)]
    authorization_policy_file: Option<PathBuf>,
    /// Kubeconfig of a kube-apiserver that authorizes requests with SubjectAccessReviews
    /// (--authorization-mode=Webhook).
    #[arg(long)]
    authorization_kubeconfig: Option<PathBuf>,
    /// How long allowed SubjectAccessReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = server::duration::parse_duration)]
    authorization_webhook_cache_authorized_ttl: std::time::Duration,
    /// How long refused SubjectAccessReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = server::duration::parse_duration)]
    authorization_webhook_cache_unauthorized_ttl: std::time::Duration,
    /// Paths anyone may get without authentication or authorization (comma-separated; a
    /// trailing * matches any suffix).
    #[arg(long, value_delimiter = ',', default_value = "/healthz,/readyz,/livez")]
    authorization_always_allow_paths: Vec<String>,
}

impl AuthFlags {
    /// The options, trusting `own_ca` (the server's CA) for client certificates too.
    fn options(&self, own_ca: PathBuf, cluster: Option<&Cluster>) -> server::auth::AuthOptions {
        let list = |v: &[String]| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        server::auth::AuthOptions {
            client_ca_files: std::iter::once(own_ca).chain(self.client_ca_file.clone()).collect(),
            token_auth_file: self.token_auth_file.clone(),
            requestheader_client_ca_file: self.requestheader_client_ca_file.clone(),
            requestheader: server::auth::requestheader::RequestHeaderConfig {
                username_headers: list(&self.requestheader_username_headers),
                uid_headers: list(&self.requestheader_uid_headers),
                group_headers: list(&self.requestheader_group_headers),
                extra_headers_prefixes: list(&self.requestheader_extra_headers_prefix),
                allowed_names: list(&self.requestheader_allowed_names),
            },
            authentication_kubeconfig: self.authentication_kubeconfig.clone(),
            token_webhook_cache_ttl: self.authentication_token_webhook_cache_ttl,
            anonymous_auth: self.anonymous_auth,
            authorization_modes: match list(&self.authorization_mode) {
                modes if !modes.is_empty() => modes,
                _ if cluster.is_some() => vec!["Webhook".into()],
                _ => vec!["RBAC".into()],
            },
            authorization_policy_file: self.authorization_policy_file.clone(),
            authorization_kubeconfig: self.authorization_kubeconfig.clone(),
            authorized_ttl: self.authorization_webhook_cache_authorized_ttl,
            unauthorized_ttl: self.authorization_webhook_cache_unauthorized_ttl,
            always_allow_paths: list(&self.authorization_always_allow_paths),
            cluster: cluster.map(|c| c.client.clone()),
            cluster_authentication: cluster.map(|c| {
                let mut published = c.authentication.clone();
                // A flag wins over what the cluster publishes.
                if self.client_ca_file.is_some() {
                    published.client_ca = None;
                }
                published
            }),
        }
    }
}

/// The cluster of aggregated mode.
struct Cluster {
    client: server::auth::client::RestClient,
    authentication: server::cluster::authentication::ClusterAuthentication,
}

/// How long start-up waits for the cluster to answer before giving up.
const CLUSTER_STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Cluster {
    /// Connects and reads the cluster's authentication settings, retrying for a while (a pod
    /// may start before its network is ready).
    async fn connect(flags: &AggregationFlags) -> Result<Cluster, Box<dyn std::error::Error>> {
        let client = server::cluster::connect(flags.kubeconfig.as_deref())?;
        let deadline = std::time::Instant::now() + CLUSTER_STARTUP_TIMEOUT;
        loop {
            match server::cluster::authentication::ClusterAuthentication::fetch(&client).await {
                Ok(authentication) => {
                    tracing::info!(
                        cluster = %client.source(),
                        front_proxy = authentication.requestheader_client_ca.is_some(),
                        client_ca = authentication.client_ca.is_some(),
                        "aggregated mode: read kube-system/extension-apiserver-authentication"
                    );
                    return Ok(Cluster { client, authentication });
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "cannot read the cluster's authentication settings yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                Err(e) => return Err(format!("aggregated mode ({}): {e}", client.source()).into()),
            }
        }
    }
}

fn main() {
    let flags = Flags::parse();
    if let Some(Subcommand::Manifests(manifests)) = &flags.command {
        if let Err(e) = print_manifests(manifests) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    if flags.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // Requests are served on threads with deep stacks: see `server::THREAD_STACK_BYTES`.
    let result = server::runtime().map_err(|e| e.into()).and_then(|runtime| runtime.block_on(run(flags)));
    if let Err(e) = result {
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
    // The local user's identity: an admin certificate from our CA (a fresh CA when the serving
    // certificate was given by flags, so the kubeconfig always has one). That CA is trusted for
    // client certificates.
    if certs.ca_pem.is_none() {
        server::tls::self_signed(&cert_dir, &["127.0.0.1".to_string()])?;
    }
    let cluster = match flags.aggregation.aggregated {
        true => Some(Cluster::connect(&flags.aggregation).await?),
        false => None,
    };
    let auth = flags.auth.options(server::tls::ca_cert_path(&cert_dir), cluster.as_ref()).build()?;
    let tls = server::tls::server_config_with_client_cas(&certs, &auth.client_ca_roots())?;
    let storage: Arc<dyn server::storage::Storage> = match flags.storage {
        StorageKind::Memory => Arc::new(MemoryStorage::with_history(flags.storage_history)),
        StorageKind::Embedded => {
            let options = EmbeddedOptions { history: flags.storage_history, ..EmbeddedOptions::default() };
            Arc::new(EmbeddedStorage::open(&flags.data_dir, options)?)
        }
        StorageKind::Etcd => Arc::new(open_etcd(&flags).await?),
    };
    let mut state =
        server::AppState::new(storage).with_auth(auth).with_limits(flags.limits.limits()).with_list_cache_bytes(flags.list_cache_bytes);
    if let Some(cluster) = &cluster {
        let namespaces = Arc::new(server::cluster::namespaces::NamespaceLifecycle::new(cluster.client.clone()));
        state = state.with_namespace_admission(namespaces.clone());
        tokio::spawn(namespaces.run(state.engine.clone()));
    }
    let app = server::app(state);
    let listener = tokio::net::TcpListener::bind((flags.bind_address, flags.secure_port)).await?;
    let address = listener.local_addr()?;
    let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = format!("https://{host}:{}", address.port());
    let kubeconfig = flags.write_kubeconfig.clone().unwrap_or_else(|| flags.data_dir.join("kubeconfig"));
    let (client_cert, client_key) = server::tls::client_certificate(&cert_dir, "admin", &["system:masters"])?;
    server::tls::write_kubeconfig(&kubeconfig, &url, certs.ca_pem.as_deref(), (&client_cert, &client_key))?;
    tracing::info!(%url, kubeconfig = %kubeconfig.display(), "serving");
    println!("Serving on {url}");
    // An absolute path works from any directory the user pastes the line into.
    let shown = std::fs::canonicalize(&kubeconfig).unwrap_or_else(|_| kubeconfig.clone());
    println!("Point kubectl at it with:  export KUBECONFIG={}", shown.display());
    let serve_options = server::serve::ServeOptions {
        http2_max_streams_per_connection: flags.limits.http2_max_streams_per_connection,
        ..Default::default()
    };
    server::serve::serve_tls_with(listener, tls, app, serve_options, shutdown_signal()).await;
    Ok(())
}

/// `apiserver manifests`.
fn print_manifests(flags: &ManifestsFlags) -> Result<(), String> {
    let settings = server::manifests::DeploySettings {
        namespace: flags.namespace.clone(),
        name: flags.name.clone(),
        image: flags.image.clone(),
        tls: None,
    };
    let manifests = server::manifests::render(&settings, &flags.cert_dir)?;
    match &flags.output_dir {
        Some(dir) => {
            for path in server::manifests::write(&manifests, dir)? {
                println!("{}", path.display());
            }
        }
        None => print!("{}", server::manifests::stream(&manifests)),
    }
    Ok(())
}

/// The etcd store of the flags. An unreachable etcd is no reason not to start: requests get 503
/// until it can be reached.
async fn open_etcd(flags: &Flags) -> Result<EtcdStorage, Box<dyn std::error::Error>> {
    if flags.etcd_servers.is_empty() {
        return Err("--storage etcd needs --etcd-servers (e.g. http://127.0.0.1:2379)".into());
    }
    let mut options = EtcdOptions::new(flags.etcd_servers.clone());
    options.prefix = flags.etcd_prefix.clone();
    options.compaction_interval = flags.etcd_compaction_interval;
    let storage = EtcdStorage::new(options)?;
    match storage.server_version().await {
        Ok(version) => tracing::info!(servers = ?flags.etcd_servers, %version, prefix = %flags.etcd_prefix, "connected to etcd"),
        Err(e) => tracing::warn!(servers = ?flags.etcd_servers, "{e}; requests will fail with 503 until etcd can be reached"),
    }
    Ok(storage)
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
