//! The HTTP middleware that answers some requests itself, before the
//! service it wraps sees them (`GET /metrics`, the web view's files): the
//! tower plumbing once, each user only says which requests are its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpRequest, HttpResponse};

/// Who answers some requests itself.
pub trait Answer: Clone {
    /// The response to a request of `method` for `path`, or `None` to pass
    /// the request on.
    fn answer(&self, method: &http::Method, path: &str) -> Option<HttpResponse>;
}

/// The layer: `Intercept(answerer)`.
#[derive(Debug, Clone)]
pub struct Intercept<A>(pub A);

impl<S, A: Answer> tower::Layer<S> for Intercept<A> {
    type Service = Intercepted<S, A>;
    fn layer(&self, inner: S) -> Intercepted<S, A> {
        Intercepted {
            inner,
            answerer: self.0.clone(),
        }
    }
}

/// The service [`Intercept`] wraps around another.
#[derive(Debug, Clone)]
pub struct Intercepted<S, A> {
    inner: S,
    answerer: A,
}

impl<S, A, B> tower::Service<HttpRequest<B>> for Intercepted<S, A>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    A: Answer,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if let Some(resp) = self.answerer.answer(req.method(), req.uri().path()) {
            return Box::pin(std::future::ready(Ok(resp)));
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
