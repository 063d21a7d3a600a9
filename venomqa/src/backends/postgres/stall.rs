//! Bounds the silence of a PostgreSQL server that owes an answer.
//!
//! The `postgres` client has no read or write timeout: a server that accepted the
//! connection and then stopped answering (a stalled host, a hung proxy) would block a test
//! forever. The client does accept a TLS connector, which is handed the socket once it is
//! connected; [`Guard`] is such a connector that does no TLS at all (it is only used with
//! `sslmode` disable or prefer, where the client would speak plain text anyway) and wraps
//! the socket in a [`Watched`] stream.
//!
//! [`Watched`] reads the frames of the protocol as they pass: every simple query (`Q`),
//! every extended-protocol `Sync` (`S`) and the startup message owe a `ReadyForQuery`
//! (`Z`) from the server. While one is owed (and the server is not waiting for `COPY`
//! data from the client), a read or write that waits more than the timeout since the last
//! byte moved fails with [`std::io::ErrorKind::TimedOut`], which ends the connection. An
//! idle connection (`LISTEN` included) never times out.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use ::postgres::Socket;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The "TLS" connector that only watches: see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    pub timeout: Duration,
}

impl MakeTlsConnect<Socket> for Guard {
    type Stream = Watched<Socket>;
    type TlsConnect = Guard;
    type Error = io::Error;

    fn make_tls_connect(&mut self, _: &str) -> io::Result<Guard> {
        Ok(*self)
    }
}

impl TlsConnect<Socket> for Guard {
    type Stream = Watched<Socket>;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Watched<Socket>>>;

    fn connect(self, socket: Socket) -> Self::Future {
        std::future::ready(Ok(Watched::new(socket, self.timeout)))
    }
}

/// A frame reader: finds where each message of one direction starts, and its type.
#[derive(Debug, Default)]
struct Frames {
    /// Whether messages carry a type byte (all but the client's first, the startup).
    typed: bool,
    header: [u8; 5],
    have: usize,
    /// Bytes of the current message's body still to come.
    remaining: usize,
}

impl Frames {
    fn new(typed: bool) -> Self {
        Frames {
            typed,
            ..Frames::default()
        }
    }

    /// Reads `data`; calls `on_message` with each message's type as its header completes
    /// (0 for the untyped startup message).
    fn feed(&mut self, mut data: &[u8], mut on_message: impl FnMut(u8)) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let header_len = if self.typed { 5 } else { 4 };
            let n = (header_len - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have < header_len {
                return;
            }
            let (kind, len) = if self.typed {
                let len = u32::from_be_bytes(self.header[1..5].try_into().expect("4 bytes"));
                (self.header[0], len)
            } else {
                let len = u32::from_be_bytes(self.header[0..4].try_into().expect("4 bytes"));
                (0, len)
            };
            self.have = 0;
            self.remaining = (len as usize).saturating_sub(4);
            self.typed = true;
            on_message(kind);
        }
    }
}

/// A socket whose reads and writes fail after `timeout` of silence while the server owes
/// an answer.
pub(crate) struct Watched<S> {
    inner: S,
    timeout: Duration,
    sent: Frames,
    received: Frames,
    /// `ReadyForQuery` messages the server owes.
    owed: u32,
    /// The server waits for `COPY` data from the client.
    copy_in: bool,
    last_activity: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Watched<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Watched {
            inner,
            timeout,
            sent: Frames::new(false),
            received: Frames::new(true),
            owed: 0,
            copy_in: false,
            last_activity: Instant::now(),
            timer: None,
        }
    }

    fn waiting_for_server(&self) -> bool {
        self.owed > 0 && !self.copy_in
    }

    fn on_sent(&mut self, data: &[u8]) {
        let (owed, copy_in) = (&mut self.owed, &mut self.copy_in);
        self.sent.feed(data, |kind| match kind {
            // The startup message, a simple query, a Sync: each ends in ReadyForQuery.
            0 | b'Q' | b'S' => *owed += 1,
            // CopyDone, CopyFail: the server answers again.
            b'c' | b'f' => *copy_in = false,
            _ => {}
        });
        self.last_activity = Instant::now();
    }

    fn on_received(&mut self, data: &[u8]) {
        let (owed, copy_in) = (&mut self.owed, &mut self.copy_in);
        self.received.feed(data, |kind| match kind {
            b'Z' => *owed = owed.saturating_sub(1),
            // CopyInResponse, CopyBothResponse: the server waits for the client.
            b'G' | b'W' => *copy_in = true,
            _ => {}
        });
        self.last_activity = Instant::now();
    }

    /// While the server owes an answer: `Ready(Err)` once the timeout has passed since
    /// the last byte moved, else `Pending` with a wake-up registered for that moment.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.waiting_for_server() {
            return Poll::Pending;
        }
        let deadline = self.last_activity + self.timeout;
        if Instant::now() >= deadline {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer from the server within io_timeout_ms ({} ms)",
                    self.timeout.as_millis()
                ),
            )));
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            // The deadline passed between the check and the poll: fail now.
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer from the server within io_timeout_ms ({} ms)",
                    self.timeout.as_millis()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = &buf.filled()[before..];
                if !filled.is_empty() {
                    this.on_received(filled);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                this.on_sent(&data[..n]);
                // The connection task read before it wrote: register the wake-up for the
                // answer now owed, so a server that never answers is noticed.
                if let Poll::Ready(Err(e)) = this.check(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.check(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Watched<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn frames_are_found_whatever_the_chunks() {
        let mut stream = Vec::new();
        // The untyped startup message, then typed ones.
        stream.extend_from_slice(&12u32.to_be_bytes());
        stream.extend_from_slice(&[0, 3, 0, 0, b'x', b'y', 0, 0]);
        stream.extend(message(b'Q', b"SELECT 1\0"));
        stream.extend(message(b'P', &[1; 300]));
        stream.extend(message(b'S', &[]));
        for chunk in [1, 2, 3, 5, 7, 64, 1000] {
            let mut frames = Frames::new(false);
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                frames.feed(piece, |k| seen.push(k));
            }
            assert_eq!(seen, [0, b'Q', b'P', b'S'], "chunks of {chunk}");
            assert_eq!((frames.have, frames.remaining), (0, 0));
        }
    }
}
