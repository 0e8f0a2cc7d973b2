//! The HTTP/1.1 + HTTP/2 (cleartext) accept loop of the REST and admin listeners, with graceful
//! shutdown, and reading a request body within a limit.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::respond::{Body, problem};

/// Largest request body a demo service reads: 1 MiB.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How long open connections get to finish once shutdown starts: 5 seconds.
const DRAIN: Duration = Duration::from_secs(5);

/// Something that answers every request of a listener with a response (never an error).
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// Serves `listener` with `handler` until `stop` is cancelled, then drains open connections.
pub(crate) fn spawn<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    stop: CancellationToken,
    name: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let (tcp, remote) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little instead of spinning.
                        warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let handler = handler.clone();
            let svc = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.call(req).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(tcp), svc)
                .into_owned();
            let conn = graceful.watch(conn);
            let span = info_span!("conn", listener = name, client.addr = %remote);
            tokio::spawn(
                async move {
                    if let Err(e) = conn.await {
                        debug!(error = %e, "connection ended with an error");
                    }
                }
                .instrument(span),
            );
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            debug!(
                listener = name,
                "connections still open after the drain time"
            );
        }
    })
}

/// Reads the whole body (at most [`MAX_BODY`]); answers 413 or 400 when it cannot.
pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Request<Bytes>, Response<Body>> {
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            &format!("bodies are limited to {MAX_BODY} bytes"),
        )),
        Err(e) => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Request body unreadable",
            &e.to_string(),
        )),
    }
}
