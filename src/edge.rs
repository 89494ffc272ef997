//! The one layer around every route: HTTP metrics, the request log, the record of the
//! server errors we answer, and response compression except on ingest. Written as a tower
//! service rather than `from_fn` middlewares: each of those clones a boxed service and
//! boxes a future and a body per request, and four of them cost about a quarter of a
//! beacon's server CPU.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::Response;
use futures_util::future::Either;
use futures_util::TryFutureExt;
use std::net::SocketAddr;
use tower::{Layer, Service};
use tower_http::compression::{Compression, CompressionLayer};

use crate::alerts;
use crate::http::engine::NotServedHere;
use crate::http::telemetry::Tracked;
use crate::store::Store;

#[derive(Clone)]
pub struct EdgeLayer {
    store: Store,
}

impl EdgeLayer {
    pub fn new(store: Store) -> EdgeLayer {
        EdgeLayer { store }
    }
}

impl<S: Clone> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            compressed: CompressionLayer::new().layer(inner.clone()),
            plain: inner,
            store: self.store.clone(),
        }
    }
}

/// A route with and without compression: answers to ingest are a few bytes, under what
/// compression would touch, so they skip its wrapping of the body.
#[derive(Clone)]
pub struct Edge<S> {
    plain: S,
    compressed: Compression<S>,
    store: Store,
}

fn is_ingest(req: &Request) -> bool {
    req.method() == Method::POST && req.uri().path().starts_with("/api/analytics/")
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Routes are always ready; both are asked so either may be called.
        match self.plain.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.compressed.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let tracked = Tracked::start(&req);
        let logged = Logged::start(&req);
        let method = req.method().clone();
        // A shared handle on the URI, not a copy of its path: most answers are not 5xx.
        let uri = req.uri().clone();
        let store = self.store.clone();
        let answer = if is_ingest(&req) {
            Either::Left(self.plain.call(req))
        } else {
            Either::Right(self.compressed.call(req).map_ok(|r| r.map(Body::new)))
        };
        Box::pin(async move {
            let resp = answer.await?;
            let status = resp.status();
            if status.is_server_error() && resp.extensions().get::<NotServedHere>().is_none() {
                alerts::record_server_error(&store, &method, uri.path(), status);
            }
            tracked.finish(status.as_u16());
            if let Some(logged) = logged {
                logged.finish(&method, uri.path(), status.as_u16());
            }
            Ok(resp)
        })
    }
}

/// A request being logged at info (`growth_stack::request`); off by default, and then a
/// request pays for no copies.
struct Logged {
    start: Instant,
    peer: String,
}

impl Logged {
    fn start(req: &Request) -> Option<Logged> {
        if !tracing::enabled!(target: "growth_stack::request", tracing::Level::INFO) {
            return None;
        }
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        Some(Logged {
            start: Instant::now(),
            peer,
        })
    }

    fn finish(self, method: &axum::http::Method, path: &str, status: u16) {
        tracing::info!(
            target: "growth_stack::request",
            %method,
            %path,
            status,
            ms = format!("{:.2}", self.start.elapsed().as_secs_f64() * 1000.0),
            peer = %self.peer,
        );
    }
}
