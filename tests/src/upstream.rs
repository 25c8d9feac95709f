//! Host-side upstream servers on 127.0.0.1, standing in for sandbox ports.
//!
//! With the fake runtime (`[sandgate.fake] endpoint_host = "127.0.0.1"`,
//! the default) every sandbox's route address is 127.0.0.1, so a server
//! listening on host port `P` is "port `P` of every fake sandbox" as far
//! as the edge proxy is concerned. This lets the scenarios test WebSocket,
//! SSE and large bodies through the real proxy without a container image
//! that serves them.
//!
//! Each server runs until its [`Upstream`] is dropped (the accept loop and
//! every connection it spawned are aborted).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;

use crate::http::{BoxBody, full};

/// A server on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct Upstream {
    port: u16,
    task: JoinHandle<()>,
}

impl Upstream {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind() -> anyhow::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding an upstream on 127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// Serves HTTP/1.1 with `handler` on a fresh port.
pub async fn serve<F, Fut>(handler: F) -> anyhow::Result<Upstream>
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<BoxBody>> + Send + 'static,
{
    let (listener, port) = bind().await?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                let service = service_fn(move |request| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
            // Reap finished connections so the set does not grow forever.
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(Upstream { port, task })
}

/// Answers every request `200` with `hello <path-and-query>`.
pub async fn hello() -> anyhow::Result<Upstream> {
    serve(|request: Request<Incoming>| async move {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        Response::new(full(format!("hello {target}")))
    })
    .await
}

/// A WebSocket server that echoes every text and binary message back.
pub async fn websocket_echo() -> anyhow::Result<Upstream> {
    let (listener, port) = bind().await?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            connections.spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    let echo = match message {
                        Message::Text(_) | Message::Binary(_) => message,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if socket.send(echo).await.is_err() {
                        break;
                    }
                }
                let _ = socket.close(None).await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(Upstream { port, task })
}
