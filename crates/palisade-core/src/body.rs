use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of a layer that may answer on its own: the inner service's body, or
    /// a [`Problem`](crate::Problem) document the layer wrote.
    ///
    /// It implements [`http_body::Body`] whenever the inner body does, so a layered service stays
    /// usable by axum, hyper and tonic without boxing.
    ///
    /// ```
    /// use http_body::Body as _;
    /// use palisade::ResponseBody;
    ///
    /// let body = ResponseBody::<http_body_util::Empty<bytes::Bytes>>::problem("{}".into());
    /// assert_eq!(body.size_hint().exact(), Some(2));
    /// ```
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        // Boxed: one pointer fits beside the inner body's niche, so wrapping a 16-byte body
        // (axum's, hyper's `Incoming`) adds nothing, and a response stays small enough to
        // move without a `memcpy` call.
        Problem { bytes: Option<Box<Bytes>> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body holding a problem document (or any fixed bytes the layer wrote).
    pub fn problem(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Problem {
                bytes: Some(Box::new(bytes)),
            },
        }
    }

    /// An empty body written by the layer (a trailers-only gRPC rejection): it ends at once.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Problem { bytes: None },
        }
    }

    /// Whether this body was written by the layer rather than by the inner service.
    pub fn is_problem(&self) -> bool {
        matches!(self.kind, Kind::Problem { .. })
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::inner(B::default())
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Problem { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(*b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Problem { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Problem { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[test]
    fn wrapping_a_boxed_body_adds_nothing() {
        type Boxed = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;
        assert_eq!(
            std::mem::size_of::<ResponseBody<Boxed>>(),
            std::mem::size_of::<Boxed>()
        );
    }

    #[tokio::test]
    async fn problem_body_yields_its_bytes_once() {
        let body = ResponseBody::<Full<Bytes>>::problem(Bytes::from_static(b"{\"a\":1}"));
        assert!(body.is_problem());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn inner_body_passes_through() {
        let body = ResponseBody::inner(Full::new(Bytes::from_static(b"hello")));
        assert!(!body.is_problem());
        assert_eq!(body.size_hint().exact(), Some(5));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
    }
}
