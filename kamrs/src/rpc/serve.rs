//! What the Unix and HTTP endpoints share: the jsonrpsee service with its
//! limits and middleware, and serving one accepted connection under the
//! connection limit.

use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    serve_with_graceful_shutdown, BatchRequestConfig, Server, ServerConfig, StopHandle,
    TowerServiceBuilder,
};
use jsonrpsee::Methods;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tower::layer::util::{Identity, Stack};

use super::http::AuthLayer;
use super::intercept::Intercept;
use super::metrics::MetricsLayer;
use super::params::CheckParamsLayer;
use super::web::WebLayer;
use super::CtlSettings;

/// Messages a connection may have waiting to be written (jsonrpsee's
/// default is 1024). A `ul.events` notification holds up to
/// [`super::watch::MAX_BATCH`] events and ends at
/// [`super::watch::MAX_BATCH_BYTES`] (256 KiB, plus its last event), so a
/// subscriber that stops reading holds some 8 MiB at most before its
/// subscription waits, falls behind the event ring and is ended.
const MESSAGE_BUFFER: u32 = 32;

/// The jsonrpsee service builder with our RPC and HTTP middleware.
pub(super) type Builder = TowerServiceBuilder<
    Stack<CheckParamsLayer, Identity>,
    Stack<Intercept<MetricsLayer>, Stack<AuthLayer, Stack<Intercept<WebLayer>, Identity>>>,
>;

/// The HTTP middleware, outermost first: the web view's static page (no
/// token: it holds no data), then the auth checks, then `/metrics`, then
/// jsonrpsee.
fn builder(ctl: &CtlSettings, web: WebLayer, auth: AuthLayer, metrics: MetricsLayer) -> Builder {
    let config = ServerConfig::builder()
        .max_request_body_size(ctl.max_request_size)
        .max_response_body_size(ctl.max_response_size)
        .max_connections(ctl.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(ctl.max_batch))
        .set_message_buffer_capacity(MESSAGE_BUFFER)
        .build();
    Server::builder()
        .set_config(config)
        .set_rpc_middleware(RpcServiceBuilder::new().layer(CheckParamsLayer))
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(Intercept(web))
                .layer(auth)
                .layer(Intercept(metrics)),
        )
        .to_service_builder()
}

/// Everything a connection task needs, cheap to clone.
#[derive(Clone)]
pub(super) struct Connections {
    builder: Builder,
    methods: Methods,
    stop: StopHandle,
    /// One permit per open connection (`ctl.max_connections`).
    slots: Arc<Semaphore>,
}

impl Connections {
    pub(super) fn new(
        ctl: &CtlSettings,
        web: WebLayer,
        auth: AuthLayer,
        metrics: MetricsLayer,
        methods: Methods,
        stop: StopHandle,
    ) -> Self {
        Connections {
            builder: builder(ctl, web, auth, metrics),
            methods,
            stop,
            slots: Arc::new(Semaphore::new(ctl.max_connections as usize)),
        }
    }

    pub(super) fn stop_handle(&self) -> &StopHandle {
        &self.stop
    }

    /// Serves HTTP and WebSocket JSON-RPC on `io` in its own task, or
    /// closes it at once when `max_connections` are already open: a
    /// client looping on connect must not exhaust the daemon's memory or
    /// file descriptors.
    pub(super) fn serve<I>(&self, io: I, peer: &str)
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            tracing::warn!(peer, "control connection refused: max_connections reached");
            return;
        };
        let service = self
            .builder
            .clone()
            .build(self.methods.clone(), self.stop.clone());
        let stopped = self.stop.clone().shutdown();
        let peer = peer.to_owned();
        tokio::spawn(async move {
            if let Err(e) = serve_with_graceful_shutdown(io, service, stopped).await {
                tracing::debug!(peer, "control connection ended: {e}");
            }
            drop(permit);
        });
    }
}
