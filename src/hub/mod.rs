//! The local Hub (`hubsync hub serve`): a faithful, persistent implementation of the Hub API
//! subset that hubsync and `huggingface_hub` use. A storage core that knows nothing of HTTP
//! ([`store`]) sits behind one axum [`router`] ([`routes`]); [`auth`] decides who may do what,
//! [`parse`] turns untrusted commit and LFS batch bodies into typed requests, and [`faults`]
//! injects failures when asked. Must not import client, plan or apply.

pub mod auth;
pub mod faults;
pub mod parse;
pub mod parts;
mod routes;
pub mod store;
pub mod writeback;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use auth::{Role, User};
pub use store::{Store, StoreError};

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to bind `{addr}`")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open the hub data folder `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("the server stopped with an error")]
    Run(#[source] std::io::Error),
}

/// How the local Hub is configured.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    /// Users and their tokens; empty means anonymous reads only.
    pub users: Vec<User>,
    /// Page size of tree and commit listings (the Hub uses 1000).
    pub page_size: usize,
    /// LFS objects larger than this are uploaded in parts of this size.
    pub multipart_chunk_size: u64,
    /// Serve `GET /admin/stats` (counters for tests).
    pub admin: bool,
    /// Injected faults (none by default).
    pub faults: faults::FaultSpec,
}

impl HubConfig {
    pub fn new(data_dir: PathBuf) -> HubConfig {
        HubConfig {
            data_dir,
            users: Vec::new(),
            page_size: 1000,
            multipart_chunk_size: 64 * 1024 * 1024,
            admin: false,
            faults: faults::FaultSpec::default(),
        }
    }
}

/// State shared by every request.
#[derive(Clone)]
pub struct HubState {
    pub(crate) store: Store,
    pub(crate) config: Arc<HubConfig>,
    pub(crate) secret: Arc<String>,
    pub(crate) faults: Arc<faults::Faults>,
    /// Multipart uploads in flight, hashed as their parts arrive.
    pub(crate) parts: Arc<parts::Registry>,
    /// The last `.gitattributes` text preupload compiled, with its LFS matcher: a repo's
    /// preupload calls come in runs (40 for 10,000 files) with the same attributes.
    lfs_matcher: Arc<std::sync::Mutex<Option<CompiledAttributes>>>,
}

/// A `.gitattributes` text and its compiled LFS matcher.
type CompiledAttributes = (String, Arc<globset::GlobSet>);

impl HubState {
    pub fn open(config: HubConfig) -> Result<HubState, ServeError> {
        let open = || -> Result<(Store, String), StoreError> {
            let store = Store::open(&config.data_dir)?;
            let secret = store.server_secret()?;
            Ok((store, secret))
        };
        let (store, secret) = open().map_err(|source| ServeError::Open {
            path: config.data_dir.clone(),
            source,
        })?;
        Ok(HubState {
            store,
            faults: Arc::new(faults::Faults::new(config.faults.clone())),
            parts: Arc::new(parts::Registry::default()),
            lfs_matcher: Arc::default(),
            config: Arc::new(config),
            secret: Arc::new(secret),
        })
    }

    /// The LFS matcher of a `.gitattributes` text, compiled once for a run of calls.
    pub(crate) fn lfs_matcher(&self, attrs: &str) -> Arc<globset::GlobSet> {
        let mut last = self.lfs_matcher.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some((text, m)) if text == attrs => m.clone(),
            _ => {
                let m = Arc::new(crate::api::lfs_matcher(attrs));
                *last = Some((attrs.to_string(), m.clone()));
                m
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The axum router of the local Hub; used by `hub serve`, the demo and in-process tests.
pub fn router(state: HubState) -> axum::Router {
    routes::router(state)
}

/// A running hub: its address, and a handle that stops it.
pub struct RunningHub {
    pub addr: SocketAddr,
    faults: Arc<faults::Faults>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl RunningHub {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far per route label (and injected faults): what `GET /admin/stats`
    /// reports, without going through HTTP (for embedded hubs in tests and benchmarks).
    pub fn traffic(&self) -> faults::Traffic {
        self.faults.traffic()
    }

    /// Stops accepting requests, lets those in flight finish, and waits.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.await {
            Ok(r) => r.map_err(ServeError::Run),
            Err(e) => Err(ServeError::Run(std::io::Error::other(e))),
        }
    }
}

/// The largest request head (request line and headers) the hub reads.
const MAX_REQUEST_HEAD: usize = 256 * 1024;

/// Binds `addr` and serves the hub in a background task (for `hub serve`, the demo and tests).
///
/// Connections are served by hyper directly rather than `axum::serve`, so that injected faults
/// can drop a connection without an answer.
pub async fn spawn(config: HubConfig, addr: &str) -> Result<RunningHub, ServeError> {
    let state = HubState::open(config)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    let faults = state.faults.clone();
    let hub_faults = faults.clone();
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(s) => s,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let (app, faults) = (app.clone(), faults.clone());
                    let svc = hyper::service::service_fn(move |req| {
                        let (app, faults) = (app.clone(), faults.clone());
                        async move { faults::run(&faults, app, req).await }
                    });
                    // The read buffer also bounds the request head (hyper has no separate
                    // limit): 256 KiB is far above any real client's headers (the Hub's CDN
                    // allows about 20 KB) and refuses header floods with a 431. More than 100
                    // headers is refused the same way (hyper's default `max_headers`).
                    let conn = hyper::server::conn::http1::Builder::new()
                        .max_buf_size(MAX_REQUEST_HEAD)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                _ = &mut rx => break,
            }
        }
        drop(listener);
        // Requests in flight get a few seconds to finish.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
        Ok(())
    });
    Ok(RunningHub {
        addr: local,
        faults: hub_faults,
        shutdown: Some(tx),
        task,
    })
}
