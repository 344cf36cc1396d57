//! The MC's REST API (axum): upstream's paths and bodies (`mcctl`'s JSON), every route a POST
//! with a JSON body, every error `{"message": "..."}`.
//!
//! # Status codes
//! - 200: done; the body is the result (`{"message": ...}` when there is nothing else).
//! - 400: bad input: malformed JSON, an unknown or missing field, an invalid name, a weak
//!   password, a rule broken (a role of the other org type, the last manager, an org in use).
//!   The message names the field or rule. (Upstream also used 400 for missing and expired
//!   tokens; here those are 401.)
//! - 401: no token, or a malformed, forged, expired or unknown-key-id token, or one naming a
//!   user or API key that no longer exists; and a login with a wrong name, password or key.
//! - 403: authenticated but not allowed; the message names the missing permission (e.g. `user
//!   bob lacks users:manage in organisation devA: holds only DeveloperViewer`). A non-admin
//!   naming an organisation that does not exist gets 403 too, exactly as for an existing one
//!   where they hold no role: organisation names cannot be fished for. API-key tokens get 403
//!   on key management, password changes, user deletion and organisation creation.
//! - 404: an object that does not exist, named by a caller allowed to know (admins for
//!   organisations; anyone for users; the owner for API keys).
//! - 409: the name (user, organisation, e-mail, controller) or role assignment is taken.
//! - 413: a request body over [`MAX_BODY`] bytes.
//! - 429: a login while the account is locked out after failed attempts (`Retry-After` says
//!   for how long); the password is not checked.
//! - 500 / 503: a fault of the MC or its store (details only in the MC's log).
//!
//! # Layout
//! - `state`: [`state::McState`], the grant snapshot, token verification.
//! - `auth`: [`auth::Principal`] and its extractor.
//! - `error`, `body`: the error reply and the JSON body extractor.
//! - `audit`: redaction and the recording middleware.
//! - `accounts`: login, users, organisations, roles, API keys, audit queries, controllers.
//! - `region`: the region API proxy (`/api/v1/auth/ctrl/<Method>`).
//! - `oauth`: the OAuth 2.0 token endpoint (client credentials of an API key), JWKS and
//!   discovery document; its errors are RFC 6749's `{"error", "error_description"}`.
//! - `camara`: CAMARA Edge Application Management on the region API (access tokens of
//!   `oauth`); its errors are CAMARA's `{"status", "code", "message"}`.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod body;
pub mod camara;
pub mod error;
pub mod oauth;
pub mod region;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

use audit::RemoteAddr;
use edge_tls::serve::{Acceptor, TlsIncoming, accept};
use error::ApiError;
use state::McState;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// Every route, with the audit recorder around them.
pub fn router(state: Arc<McState>) -> Router {
    Router::new()
        .merge(accounts::routes())
        .merge(region::routes())
        .merge(oauth::routes())
        .merge(camara::routes())
        .fallback(|| async { ApiError::not_found("no such API path") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .with_state(state)
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for RemoteAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> RemoteAddr {
        RemoteAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsIncoming>> for RemoteAddr {
    fn connect_info(stream: IncomingStream<'_, TlsIncoming>) -> RemoteAddr {
        RemoteAddr(*stream.remote_addr())
    }
}

/// Serves the API on `listener` until `shutdown` completes: HTTPS with `tls`, else plaintext
/// (the caller decides when plaintext is acceptable).
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<McState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    if let Some(config) = tls {
        // The accept loop stops with the server, after in-flight requests are answered.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let incoming = accept(listener, Acceptor::Tls(config), stop_rx)?;
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        return axum::serve(
            incoming,
            app.into_make_service_with_connect_info::<RemoteAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<RemoteAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
