//! The HTTP endpoint serving `/metrics` (hyper, HTTP/1.1), one task per connection. Any local
//! user can connect, so what a client can take is bounded: a few connections at once, a few
//! seconds each, small requests, and `GET`/`HEAD /metrics` only. The recorder's own file
//! descriptors never run out because of it.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{ALLOW, CONTENT_TYPE},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

use super::{Metrics, SCRAPES};
use crate::error::usage;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Connections served at once; more are closed as soon as they are accepted. A scraper needs
/// one; each holds a file descriptor.
const MAX_CONNECTIONS: usize = 32;
/// A client must send its request's headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this, whatever it is doing.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request (headers) read; a scrape's is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Pause after a failed accept (out of descriptors, say): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `addr` now (so a taken port is a startup error) and serves in the background.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        usage(format!(
            "cannot serve metrics on {addr}: {err}; pick another --metrics address or --no-metrics"
        ))
    })?;
    Ok(tokio::spawn(accept_loop(listener, metrics)))
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                log::debug!("metrics accept: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Full: the connection is dropped (closed) here, and its descriptor with it.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, Arc::clone(&metrics)));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_REQUEST_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Err(err)) => log::debug!("metrics connection: {err}"),
                Err(_) => log::debug!("metrics connection: closed after {CONNECTION_TIMEOUT:?}"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status, body: &'static [u8]| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(body)))
    };
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            SCRAPES.fetch_add(1, Ordering::Relaxed);
            Response::builder()
                .header(CONTENT_TYPE, OPENMETRICS)
                .body(Full::new(Bytes::from(metrics.encode())))
        }
        (_, "/metrics") => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(ALLOW, "GET, HEAD")
            .body(Full::new(Bytes::from_static(b"only GET and HEAD\n"))),
        _ => text(
            StatusCode::NOT_FOUND,
            b"not found; metrics are at /metrics\n",
        ),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}
