//! The HTTP endpoint serving `/metrics` (hyper, HTTP/1.1), one task per connection.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, sync::atomic::Ordering};

use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::CONTENT_TYPE,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Metrics, SCRAPES};
use crate::error::usage;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, Arc::clone(&metrics)));
                if let Err(err) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    log::debug!("metrics connection: {err}");
                }
            });
        }
    }))
}

async fn respond(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match request.uri().path() {
        "/metrics" => {
            SCRAPES.fetch_add(1, Ordering::Relaxed);
            Response::builder()
                .header(CONTENT_TYPE, OPENMETRICS)
                .body(Full::new(Bytes::from(metrics.encode())))
        }
        "/" => Response::builder().body(Full::new(Bytes::from_static(
            b"profiler record: metrics at /metrics\n",
        ))),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found; try /metrics\n"))),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}
