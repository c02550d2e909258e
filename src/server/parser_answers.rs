//! The JSON error shape for the requests hyper's parser refuses.
//!
//! hyper answers a request whose head it cannot parse (400), whose request target is too long
//! (414) or whose head is too large (431) itself, before any service sees it, with an empty body,
//! and then closes the connection. Nothing in hyper turns that off, and its error reaches us only
//! after the answer is written. So the stream under hyper is wrapped: hyper writes with one flat
//! buffer (`writev(false)`), its automatic answer is the last thing it writes on the connection,
//! so it is the tail of the buffer of a write, and this wrapper writes the JSON answer in its
//! place.
//!
//! The tail is recognised exactly: `HTTP/1.1 `, one of the three status lines, then only the
//! `connection: close`, `content-length: 0` and `date` fields hyper writes, and the blank line. The
//! daemon's own answers never have an empty body with these statuses (every refusal is JSON), and
//! no body ends in a raw CRLF pair (JSON escapes it, the text format escapes `\n`), so nothing else
//! matches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest request head (request line and header fields) hyper buffers: `max_buf_size`.
pub const MAX_HEAD_BYTES: usize = 400 * 1024;
/// The most header fields of a request: `max_headers`.
pub const MAX_HEADER_FIELDS: usize = 100;
/// hyper's fixed limit on the request target (`MAX_URI_LEN`, not configurable).
pub const MAX_TARGET_BYTES: usize = 65_534;

/// A connection's stream, with hyper's bodiless parser refusals replaced by JSON answers.
pub struct JsonParserAnswers<S> {
    inner: S,
    /// A replacement answer, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonParserAnswers<S> {
    pub fn new(inner: S) -> Self {
        JsonParserAnswers {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonParserAnswers<S> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParserAnswers<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParserAnswers<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        match refusal_at_end(buf) {
            // What comes before it (the end of an earlier answer) goes out first; hyper then
            // writes the rest, which starts with the refusal.
            Some((start, _)) if start > 0 => {
                Pin::new(&mut this.inner).poll_write(cx, &buf[..start])
            }
            Some((_, refusal)) => {
                this.pending = refusal.answer(date_field(buf));
                this.written = 0;
                // The refusal is taken; its replacement goes out now or at the flush.
                match this.poll_pending(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(buf.len())),
                }
            }
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One of hyper's automatic answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadRequest,
    TargetTooLong,
    HeadTooLarge,
}

impl Refusal {
    const ALL: [(Refusal, &'static [u8]); 3] = [
        (Refusal::BadRequest, b"HTTP/1.1 400 Bad Request\r\n"),
        (Refusal::TargetTooLong, b"HTTP/1.1 414 URI Too Long\r\n"),
        (
            Refusal::HeadTooLarge,
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        ),
    ];

    fn status_line(self) -> &'static [u8] {
        Refusal::ALL
            .iter()
            .find(|(refusal, _)| *refusal == self)
            .map_or(b"HTTP/1.1 400 Bad Request\r\n", |(_, line)| line)
    }

    fn message(self) -> String {
        match self {
            Refusal::BadRequest => "the request is not valid HTTP/1.1 (its request line or a header field is malformed); nothing was done".to_owned(),
            Refusal::TargetTooLong => format!(
                "the request target is longer than {MAX_TARGET_BYTES} bytes; nothing was done"
            ),
            Refusal::HeadTooLarge => format!(
                "the request head has more than {MAX_HEADER_FIELDS} header fields or more than {MAX_HEAD_BYTES} bytes; nothing was done"
            ),
        }
    }

    /// The JSON answer, with hyper's `date` field when it wrote one.
    fn answer(self, date: Option<&[u8]>) -> Vec<u8> {
        let body = serde_json::json!({ "error": self.message() }).to_string();
        let mut answer = self.status_line().to_vec();
        answer.extend_from_slice(b"content-type: application/json\r\nconnection: close\r\n");
        answer.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        if let Some(date) = date {
            answer.extend_from_slice(date);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"\r\n");
        answer.extend_from_slice(body.as_bytes());
        answer
    }
}

/// Where hyper's automatic answer starts in `buf`, when `buf` ends with one.
fn refusal_at_end(buf: &[u8]) -> Option<(usize, Refusal)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    // The answer is short (under 150 bytes): only the tail is searched.
    let from = buf.len().saturating_sub(256);
    Refusal::ALL.iter().find_map(|(refusal, line)| {
        let start = from + find_last(&buf[from..], line)?;
        let fields = &buf[start + line.len()..buf.len() - 2];
        let only_hypers_fields = fields
            .split(|&b| b == b'\n')
            .filter(|field| !field.is_empty())
            .all(|field| {
                let field = field.strip_suffix(b"\r").unwrap_or(field);
                field == b"connection: close"
                    || field == b"content-length: 0"
                    || (field.starts_with(b"date: ") && field.len() < 64)
            });
        let has_empty_body = fields
            .split(|&b| b == b'\n')
            .any(|field| field == b"content-length: 0\r");
        (only_hypers_fields && has_empty_body && fields.ends_with(b"\r\n"))
            .then_some((start, *refusal))
    })
}

/// hyper's `date: …` field of the answer at the end of `buf`.
fn date_field(buf: &[u8]) -> Option<&[u8]> {
    buf.split(|&b| b == b'\n')
        .rev()
        .map(|field| field.strip_suffix(b"\r").unwrap_or(field))
        .take(6)
        .find(|field| field.starts_with(b"date: "))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 15:41:01 GMT\r\n\r\n";

    #[test]
    fn recognises_hypers_refusals_at_the_end_only() {
        assert_eq!(refusal_at_end(HYPER_431), Some((0, Refusal::HeadTooLarge)));
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let both = [&earlier[..], HYPER_431].concat();
        assert_eq!(
            refusal_at_end(&both),
            Some((earlier.len(), Refusal::HeadTooLarge))
        );
        // Our own answers: a JSON 400 has a body; a refusal followed by anything is not hyper's.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\ndate: Mon, 07 Dec 2026 15:41:01 GMT\r\n\r\n{}";
        assert_eq!(refusal_at_end(ours), None);
        let followed = [HYPER_431, b"x"].concat();
        assert_eq!(refusal_at_end(&followed), None);
        let other_field =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(refusal_at_end(other_field), None);
        assert_eq!(
            refusal_at_end(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"),
            None
        );
    }

    #[test]
    fn the_answer_is_framed_json_with_hypers_date() {
        let answer = Refusal::HeadTooLarge.answer(date_field(HYPER_431));
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(
            head.contains("\r\ndate: Mon, 07 Dec 2026 15:41:01 GMT"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("100 header fields")
        );
    }
}
