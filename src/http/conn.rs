//! Connection wrapper that gives hyper's own parse-error answers (400 bad head, 414 URI too
//! long, 431 head too large) Hydra's JSON error body instead of an empty one.
//!
//! hyper writes those responses itself, before any service runs, as a bare head
//! (`content-length: 0` and `date`, nothing else) and then closes the connection
//! (hyper `proto/h1/role.rs` `on_error`). Responses from our routers always carry
//! `x-request-id`, so a head of exactly that form can only come from hyper; it is replaced on
//! the way out by the same status with a JSON body and `connection: close`.
use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps another acceptor (plain TCP or TLS) and its streams.
#[derive(Clone, Debug)]
pub struct JsonErrorsAcceptor<A>(pub A);

impl<A, I, S> Accept<I, S> for JsonErrorsAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
{
    type Stream = JsonErrors<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let fut = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = fut.await?;
            Ok((
                JsonErrors {
                    inner: stream,
                    pending: None,
                },
                service,
            ))
        })
    }
}

/// A stream whose writes are passed through, except hyper's bare error heads.
#[derive(Debug)]
pub struct JsonErrors<T> {
    inner: T,
    /// Replacement bytes, how many of them are written, and the length hyper handed us.
    pending: Option<(Vec<u8>, usize, usize)>,
}

/// The JSON replacement for a bare hyper error head, if `buf` is one.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > 512 || !buf.starts_with(b"HTTP/1.") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let status_line = lines.next()?;
    let code = status_line.get(9..12)?;
    let (error, description) = match code {
        "400" => (
            "invalid_request",
            "The request could not be parsed as HTTP.",
        ),
        "414" => ("invalid_request", "The request URI is too long."),
        "431" => (
            "invalid_request",
            "The request header fields are too large.",
        ),
        _ => return None,
    };
    let mut saw_length = false;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if lower == "content-length: 0" {
            saw_length = true;
        } else if !lower.starts_with("date: ") && lower != "connection: close" {
            return None;
        }
    }
    if !saw_length {
        return None;
    }
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, original)) = &mut self.pending {
            if *written >= bytes.len() {
                let n = *original;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            // Cheap test first: only 4xx heads are candidates.
            if buf.len() > 12 && buf[9] == b'4' {
                if let Some(bytes) = replacement(buf) {
                    self.pending = Some((bytes, 0, buf.len()));
                }
            }
        }
        if self.pending.is_some() {
            return self.drain(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A bare error head is a single buffer; anything else goes straight through.
        let first = bufs.iter().find(|b| !b.is_empty());
        match first {
            Some(b) if self.pending.is_some() || (b.len() > 12 && b[9] == b'4') => {
                let b: &[u8] = b;
                let b = b.to_vec();
                self.poll_write(cx, &b)
            }
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            ready!(self.drain(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_bare_hyper_heads_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "));
        assert!(out.ends_with(r#"{"error":"invalid_request","error_description":"The request header fields are too large."}"#));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: a\r\n\r\n";
        assert!(replacement(ours).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
