//! The HTTP side of `telemetry`: a middleware that counts every response by method, route
//! and status class with its latency, and a listener that counts open TCP connections.
//! Both cost a few relaxed atomic adds per request or connection.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::telemetry::HTTP;

/// Requests no route matched (static files of the dashboard, 404s) share one label, so
/// scanners cannot grow the label set.
const FALLBACK: &str = "fallback";

pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_name(req.method());
    // Cloning the matched path is an Arc increment, not a copy.
    let route = req.extensions().get::<MatchedPath>().cloned();
    HTTP.in_flight.fetch_add(1, Relaxed);
    let resp = next.run(req).await;
    HTTP.in_flight.fetch_sub(1, Relaxed);
    HTTP.record(
        method,
        route.as_ref().map_or(FALLBACK, MatchedPath::as_str),
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// The method as a static string, so a slot key never allocates for it.
pub fn method_name(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// A TCP listener whose connections count themselves open until dropped.
pub struct CountingListener(pub TcpListener);

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Counted, std::net::SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        // Answers are small and sent whole: no Nagle delay behind a delayed ACK.
        let _ = io.set_nodelay(true);
        HTTP.open_connections.fetch_add(1, Relaxed);
        (Counted(io), addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

pub struct Counted(TcpStream);

impl Drop for Counted {
    fn drop(&mut self) {
        HTTP.open_connections.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
