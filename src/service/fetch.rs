//! Outbound GETs of documents a client points at: its `sector_identifier_uri`, its
//! `request_uri`s and its `jwks_uri`. Every fetch has a deadline and a size limit, follows no
//! redirects, and trusts the system's root certificates (including a bundle named by
//! `SSL_CERT_FILE`), so a hostile or slow URL costs a bounded amount of time and memory.
use std::time::Duration;

/// How long one fetch may take, connection included (Hydra's HTTP client uses the same order).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document read; anything larger is refused without reading the rest.
pub const MAX_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Transport(String),
    #[error("status code '200' was expected, but got '{0}'")]
    Status(u16),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    max_bytes: usize,
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new(TIMEOUT, MAX_BYTES)
    }
}

impl Fetcher {
    pub fn new(timeout: Duration, max_bytes: usize) -> Fetcher {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_native_certs(true)
            .build()
            .unwrap_or_default();
        Fetcher { http, max_bytes }
    }

    /// The body of a 200 answer to `GET url`, at most `max_bytes` long.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError::Transport(without_url(&e)))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(without_url(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// reqwest's message without the URL it appends (the caller names the URL itself).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "the connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(body: &'static [u8], status: u16) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            }
        });
        format!("http://{addr}/doc")
    }

    #[tokio::test]
    async fn reads_bounded_documents() {
        let f = Fetcher::new(Duration::from_secs(2), 16);
        let ok = serve(b"[\"a\"]", 200).await;
        assert_eq!(f.get(&ok).await.unwrap(), b"[\"a\"]");
        let big = serve(b"01234567890123456789", 200).await;
        assert!(matches!(f.get(&big).await, Err(FetchError::TooLarge(16))));
        let missing = serve(b"", 404).await;
        assert!(matches!(
            f.get(&missing).await,
            Err(FetchError::Status(404))
        ));
        assert!(matches!(
            f.get("http://127.0.0.1:1/nothing").await,
            Err(FetchError::Transport(_))
        ));
    }
}
