//! The sans-I/O contract between an operation and its host, and the blocking driver.
//!
//! An operation is a state machine. The host loops:
//!
//! 1. `poll()` → [`Action::Send`] a request, [`Action::Sleep`] (then poll again), or [`Action::Done`].
//! 2. After sending: `on_response(head)` with the status and headers (or `on_transport_error` if no response came).
//!    It returns a [`BodyMode`] telling what to do with the body.
//! 3. Then `on_body(chunk)` for each chunk (not in `Discard` mode) and `on_body_end()` once; or
//!    `on_transport_error` if reading the body fails. In `Stream` mode `on_body` returns the verified bytes
//!    to hand to the host's sink.
//!
//! Any `Err` is final. The async browser driver is the same loop with `fetch` and a timer.

use std::io::Read;
use std::time::Duration;

use lw_oci::Digest;

use crate::error::{Error, TransportError};
use crate::exchange::{ExStep, Exchange, Handled, Spec};
use crate::http::{Body, BodyMode, Request, ResponseHead};
use crate::Client;

/// What the host must do next.
#[derive(Debug)]
pub enum Action<T> {
    /// Send this request.
    Send(Request),
    /// Wait this long, then `poll()` again (retry backoff; the core has no clock).
    Sleep(Duration),
    /// The operation finished with this result.
    Done(T),
}

/// A protocol operation driven by a host. See the module documentation for the calling sequence.
pub trait Operation {
    type Output;

    fn poll(&mut self) -> Result<Action<Self::Output>, Error>;

    fn on_response(&mut self, head: ResponseHead) -> Result<BodyMode, Error>;

    /// Feed a chunk of the response body. In [`BodyMode::Stream`] the returned slice (part of `chunk`) is verified
    /// blob data for the host's sink; otherwise it is empty.
    fn on_body<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], Error>;

    fn on_body_end(&mut self) -> Result<(), Error>;

    /// The request could not be sent, no response came, or the body broke off.
    fn on_transport_error(&mut self, error: TransportError) -> Result<(), Error>;
}

/// A request body as the blocking transport sends it.
pub enum SendBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Exactly `len` bytes from `reader`.
    Reader {
        reader: &'a mut dyn Read,
        len: u64,
    },
}

/// A blocking HTTP transport. It must not follow redirects, must send `Content-Length` for bodies (including
/// an empty `POST`/`PUT`/`PATCH`), and must return the body unread.
pub trait Transport {
    type Body: Read;

    fn send(
        &mut self,
        request: &Request,
        body: SendBody<'_>,
    ) -> Result<(ResponseHead, Self::Body), TransportError>;

    /// Pause before a retry. No default: a pure crate cannot sleep (it panics on wasm32), so each host says how.
    fn sleep(&mut self, duration: Duration);
}

/// Where the blocking driver gets upload bytes and puts downloaded blob bytes.
pub trait BlobIo {
    /// Bytes `offset .. offset + len` of blob `digest`, for an upload.
    fn open_upload(
        &mut self,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Read + '_>, Error> {
        let _ = (digest, offset, len);
        Err(Error::Misuse(
            "this operation uploads a blob: drive it with a BlobIo that can open it",
        ))
    }

    /// Verified blob bytes from a download, in order.
    fn write_download(&mut self, data: &[u8]) -> Result<(), Error> {
        let _ = data;
        Ok(())
    }
}

/// A [`BlobIo`] that uploads nothing and discards downloads.
pub struct NoBlobIo;
impl BlobIo for NoBlobIo {}

const READ_CHUNK: usize = 64 * 1024;

/// Run an operation to completion over a blocking transport (downloads are verified, then discarded).
pub fn drive<O: Operation + ?Sized>(
    op: &mut O,
    transport: &mut impl Transport,
) -> Result<O::Output, Error> {
    drive_with(op, transport, &mut NoBlobIo)
}

/// Run an operation to completion over a blocking transport, with blob bytes going through `io`.
pub fn drive_with<O: Operation + ?Sized, T: Transport>(
    op: &mut O,
    transport: &mut T,
    io: &mut dyn BlobIo,
) -> Result<O::Output, Error> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let req = match op.poll()? {
            Action::Done(out) => return Ok(out),
            Action::Sleep(d) => {
                transport.sleep(d);
                continue;
            }
            Action::Send(req) => req,
        };
        let sent = match &req.body {
            Body::Empty => transport.send(&req, SendBody::Empty),
            Body::Bytes(b) => transport.send(&req, SendBody::Bytes(b)),
            Body::Blob {
                digest,
                offset,
                len,
            } => {
                let reader = io.open_upload(digest, *offset, *len)?;
                let mut limited = reader.take(*len);
                transport.send(
                    &req,
                    SendBody::Reader {
                        reader: &mut limited,
                        len: *len,
                    },
                )
            }
        };
        let (head, mut body) = match sent {
            Ok(x) => x,
            Err(e) => {
                op.on_transport_error(e)?;
                continue;
            }
        };
        match op.on_response(head)? {
            BodyMode::Discard => {
                drop(body);
                op.on_body_end()?;
            }
            BodyMode::Buffer | BodyMode::Stream => loop {
                match body.read(&mut buf) {
                    Ok(0) => {
                        op.on_body_end()?;
                        break;
                    }
                    Ok(n) => {
                        let out = op.on_body(&buf[..n])?;
                        if !out.is_empty() {
                            io.write_download(out)?;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        op.on_transport_error(TransportError::new(format!(
                            "reading the response: {e}"
                        )))?;
                        break;
                    }
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The internal shape of operations: a Flow issues logical requests (Specs) and judges their final responses; the
// Runner wraps it with an Exchange per request, which handles auth, redirects and retries.

pub(crate) enum Next<T> {
    Request(Spec),
    Sleep(Duration),
    Done(T),
}

/// How a flow wants the body of a final response.
pub(crate) enum Plan {
    /// Not needed.
    Discard,
    /// Buffered; more than `limit` bytes is an error naming `what`.
    Collect { limit: u64, what: String },
    /// An error answer: read (truncated) for its message, then fail with it.
    Fail,
    /// Streamed through `on_chunk`.
    Stream,
}

pub(crate) trait Flow {
    type Output;
    fn next(&mut self, client: &Client) -> Result<Next<Self::Output>, Error>;
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error>;
    /// The body of a `Discard` (empty) or `Collect` response.
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error>;
    fn on_chunk<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], Error> {
        let _ = chunk;
        Err(Error::Misuse("unexpected stream chunk"))
    }
    fn on_stream_end(&mut self) -> Result<(), Error> {
        Err(Error::Misuse("unexpected stream end"))
    }
    /// A streamed body broke off. Default: fail.
    fn on_stream_error(&mut self, client: &Client, error: TransportError) -> Result<(), Error> {
        let _ = client;
        Err(Error::Host(error.message))
    }
    /// An exchange failed for good. Flows that can start over (uploads) return `Ok` and go again.
    fn on_error(&mut self, client: &Client, error: Error) -> Result<(), Error> {
        let _ = client;
        Err(error)
    }
}

const FAIL_BODY_LIMIT: usize = 64 * 1024;

enum BodyState {
    None,
    Exchange,
    Collect {
        head: ResponseHead,
        buf: Vec<u8>,
        limit: u64,
        what: String,
    },
    Fail {
        head: ResponseHead,
        buf: Vec<u8>,
    },
    Discard {
        head: ResponseHead,
    },
    Stream,
    /// The response was abandoned (its operation starts over); its body is of no interest.
    Ignore,
}

pub(crate) struct Runner<F: Flow> {
    client: Client,
    flow: F,
    ex: Option<Exchange>,
    body: BodyState,
    finished: bool,
}

impl<F: Flow> Runner<F> {
    pub fn new(client: Client, flow: F) -> Self {
        Runner {
            client,
            flow,
            ex: None,
            body: BodyState::None,
            finished: false,
        }
    }

    pub(crate) fn flow_mut(&mut self) -> &mut F {
        &mut self.flow
    }

    fn fail(&mut self, e: Error) -> Result<(), Error> {
        self.ex = None;
        self.body = BodyState::None;
        self.flow.on_error(&self.client, e)
    }

    fn exchange(&mut self) -> Result<&mut Exchange, Error> {
        self.ex
            .as_mut()
            .ok_or(Error::Misuse("no request outstanding"))
    }
}

impl<F: Flow> Operation for Runner<F> {
    type Output = F::Output;

    fn poll(&mut self) -> Result<Action<F::Output>, Error> {
        if self.finished {
            return Err(Error::Misuse("poll() after the operation finished"));
        }
        loop {
            if let Some(ex) = &mut self.ex {
                match ex.poll()? {
                    ExStep::Send(r) => return Ok(Action::Send(r)),
                    ExStep::Sleep(d) => return Ok(Action::Sleep(d)),
                    ExStep::Idle => self.ex = None,
                }
            }
            match self.flow.next(&self.client)? {
                Next::Request(spec) => self.ex = Some(Exchange::new(self.client.clone(), spec)),
                Next::Sleep(d) => return Ok(Action::Sleep(d)),
                Next::Done(out) => {
                    self.finished = true;
                    return Ok(Action::Done(out));
                }
            }
        }
    }

    fn on_response(&mut self, head: ResponseHead) -> Result<BodyMode, Error> {
        let handled = match self.exchange()?.on_response(head) {
            Ok(h) => h,
            Err(e) => {
                self.fail(e)?;
                self.body = BodyState::Ignore;
                return Ok(BodyMode::Discard);
            }
        };
        match handled {
            Handled::Internal(mode) => {
                self.body = BodyState::Exchange;
                Ok(mode)
            }
            Handled::Final(head) => match self.flow.on_head(&head)? {
                Plan::Discard => {
                    self.body = BodyState::Discard { head };
                    Ok(BodyMode::Discard)
                }
                Plan::Collect { limit, what } => {
                    if let Some(n) = head.content_length() {
                        if n > limit {
                            return Err(Error::TooLarge {
                                what,
                                limit,
                                announced: Some(n),
                            });
                        }
                    }
                    self.body = BodyState::Collect {
                        head,
                        buf: Vec::new(),
                        limit,
                        what,
                    };
                    Ok(BodyMode::Buffer)
                }
                Plan::Fail => {
                    self.body = BodyState::Fail {
                        head,
                        buf: Vec::new(),
                    };
                    Ok(BodyMode::Buffer)
                }
                Plan::Stream => {
                    self.body = BodyState::Stream;
                    Ok(BodyMode::Stream)
                }
            },
        }
    }

    fn on_body<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], Error> {
        match &mut self.body {
            BodyState::Exchange => {
                self.ex
                    .as_mut()
                    .ok_or(Error::Misuse("no request outstanding"))?
                    .on_body(chunk)?;
                Ok(&[])
            }
            BodyState::Collect {
                buf, limit, what, ..
            } => {
                if (buf.len() + chunk.len()) as u64 > *limit {
                    return Err(Error::TooLarge {
                        what: what.clone(),
                        limit: *limit,
                        announced: None,
                    });
                }
                buf.extend_from_slice(chunk);
                Ok(&[])
            }
            BodyState::Fail { buf, .. } => {
                let room = FAIL_BODY_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                Ok(&[])
            }
            BodyState::Stream => self.flow.on_chunk(chunk),
            BodyState::Discard { .. } | BodyState::None | BodyState::Ignore => Ok(&[]),
        }
    }

    fn on_body_end(&mut self) -> Result<(), Error> {
        match std::mem::replace(&mut self.body, BodyState::None) {
            BodyState::Exchange => {
                let r = self.exchange()?.on_body_end();
                if let Err(e) = r {
                    self.fail(e)?;
                }
                Ok(())
            }
            BodyState::Collect { head, buf, .. } => self.flow.on_collected(head, buf),
            BodyState::Discard { head } => self.flow.on_collected(head, Vec::new()),
            BodyState::Fail { head, buf } => {
                let ex = self.exchange()?;
                let e = Error::from_response(ex.method(), ex.url(), &head, &buf);
                self.fail(e)
            }
            BodyState::Stream => self.flow.on_stream_end(),
            BodyState::Ignore => Ok(()),
            BodyState::None => Err(Error::Misuse("on_body_end() without a response")),
        }
    }

    fn on_transport_error(&mut self, error: TransportError) -> Result<(), Error> {
        match std::mem::replace(&mut self.body, BodyState::None) {
            BodyState::Stream => {
                self.ex = None;
                self.flow.on_stream_error(&self.client, error)
            }
            BodyState::Ignore => Ok(()),
            _ => {
                let r = self.exchange()?.on_transport_error(error);
                match r {
                    Ok(()) => Ok(()),
                    Err(e) => self.fail(e),
                }
            }
        }
    }
}

/// Define a public operation type wrapping a `Runner` over a private flow.
macro_rules! public_op {
    ($(#[$m:meta])* $name:ident, $flow:ty, $out:ty) => {
        $(#[$m])*
        pub struct $name(pub(crate) crate::op::Runner<$flow>);

        impl crate::op::Operation for $name {
            type Output = $out;
            fn poll(&mut self) -> Result<crate::op::Action<$out>, crate::Error> {
                self.0.poll()
            }
            fn on_response(&mut self, head: crate::http::ResponseHead) -> Result<crate::http::BodyMode, crate::Error> {
                self.0.on_response(head)
            }
            fn on_body<'a>(&mut self, chunk: &'a [u8]) -> Result<&'a [u8], crate::Error> {
                self.0.on_body(chunk)
            }
            fn on_body_end(&mut self) -> Result<(), crate::Error> {
                self.0.on_body_end()
            }
            fn on_transport_error(&mut self, error: crate::error::TransportError) -> Result<(), crate::Error> {
                self.0.on_transport_error(error)
            }
        }
    };
}
pub(crate) use public_op;
