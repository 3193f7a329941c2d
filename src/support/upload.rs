//! Uploads a support zip: one HTTP POST whose body is the zip, with the bytes sent reported as
//! they go. Plain HTTP only: the till carries no TLS library.

use super::redact::mask_text;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting may take before the address counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole upload may take on a slow line.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Called with (bytes sent, total bytes).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The server took the zip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub status: u16,
    /// The start of the server's answer (a ticket number, say), masked.
    pub reply: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the support address is not a valid http:// URL: {0}")]
    BadUrl(String),
    #[error("the support address uses HTTPS, which this build cannot send to; set an http:// address")]
    NoTls,
    #[error("the support server {host} could not be reached: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("the support server did not answer in time")]
    TimedOut,
    #[error("the support server refused the zip (HTTP {status})")]
    Rejected { status: u16, reply: String },
}

/// Posts `bytes` to `url` as `application/zip`.
pub fn upload(url: &str, file_name: &str, bytes: Vec<u8>, progress: Progress) -> Result<Sent, UploadError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| UploadError::BadUrl(e.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" => return Err(UploadError::NoTls),
        other => return Err(UploadError::BadUrl(format!("unknown scheme {other}"))),
    }
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(UPLOAD_TIMEOUT)
        .build()
        .map_err(|e| UploadError::Unreachable {
            host: host_of(&parsed),
            detail: e.to_string(),
        })?;
    let total = bytes.len() as u64;
    progress(0, total);
    let body = reqwest::blocking::Body::sized(
        CountingReader {
            inner: std::io::Cursor::new(bytes),
            sent: 0,
            total,
            progress,
        },
        total,
    );
    let host = host_of(&parsed);
    let response = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/zip")
        .header(
            reqwest::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        )
        .body(body)
        .send()
        .map_err(|error| {
            if error.is_timeout() {
                UploadError::TimedOut
            } else {
                UploadError::Unreachable {
                    host,
                    detail: error_chain(&error),
                }
            }
        })?;
    let status = response.status();
    let reply: String = response.text().unwrap_or_default().chars().take(200).collect();
    let reply = mask_text(reply.trim());
    if status.is_success() {
        Ok(Sent {
            status: status.as_u16(),
            reply,
        })
    } else {
        Err(UploadError::Rejected {
            status: status.as_u16(),
            reply,
        })
    }
}

/// `host:port`, for messages: the path and query may carry a key.
fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Counts the bytes the HTTP client takes from the body.
struct CountingReader {
    inner: std::io::Cursor<Vec<u8>>,
    sent: u64,
    total: u64,
    progress: Progress,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.sent += n as u64;
            (self.progress)(self.sent, self.total);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_reader_reports_every_byte() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let mut reader = CountingReader {
            inner: std::io::Cursor::new(vec![7u8; 10]),
            sent: 0,
            total: 10,
            progress: Arc::new(move |sent, total| log.lock().unwrap().push((sent, total))),
        };
        let mut buf = [0u8; 4];
        while reader.read(&mut buf).unwrap() > 0 {}
        assert_eq!(*seen.lock().unwrap(), [(4, 10), (8, 10), (10, 10)]);
    }

    #[test]
    fn addresses_this_build_cannot_use_are_refused_before_sending() {
        let none: Progress = Arc::new(|_, _| {});
        assert_eq!(
            upload("https://support.example/x", "a.zip", vec![1], none.clone()),
            Err(UploadError::NoTls)
        );
        assert!(matches!(
            upload("not a url", "a.zip", vec![1], none.clone()),
            Err(UploadError::BadUrl(_))
        ));
        assert!(matches!(
            upload("ftp://support.example/x", "a.zip", vec![1], none),
            Err(UploadError::BadUrl(_))
        ));
    }
}
