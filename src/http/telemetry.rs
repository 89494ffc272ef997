//! The HTTP side of `telemetry`: `Tracked` counts every response by method, route and
//! status class with its latency (the composition root's edge holds one per request), and
//! a listener counts open TCP connections. Both cost a few relaxed atomic adds.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::telemetry::HTTP;

/// Requests no route matched (static files of the dashboard, 404s) share one label, so
/// scanners cannot grow the label set.
const FALLBACK: &str = "fallback";

/// One request being counted: in flight until finished or dropped (a client that hangs up
/// mid-request drops it), then recorded with its route, status class and latency.
pub struct Tracked {
    start: Instant,
    method: &'static str,
    route: Option<MatchedPath>,
}

impl Tracked {
    pub fn start(req: &Request) -> Tracked {
        HTTP.in_flight.fetch_add(1, Relaxed);
        Tracked {
            start: Instant::now(),
            method: method_name(req.method()),
            // Cloning the matched path is an Arc increment, not a copy.
            route: req.extensions().get::<MatchedPath>().cloned(),
        }
    }

    pub fn finish(self, status: u16) {
        HTTP.record(
            self.method,
            self.route.as_ref().map_or(FALLBACK, MatchedPath::as_str),
            status,
            self.start.elapsed().as_secs_f64(),
        );
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        HTTP.in_flight.fetch_sub(1, Relaxed);
    }
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
