//! Serving a router on a listener with limits, for every HTTP listener of
//! the daemon (the API and the push sources): a request's head must arrive
//! within [`Limits::header_timeout`] of its first byte, a connection with
//! nothing in flight is closed after [`Limits::idle_timeout`] of silence,
//! and at most [`Limits::max_connections`] are open at once.
//!
//! A request's body must arrive whole within [`Limits::body_timeout`] of
//! its head: a client that sends headers and then nothing cannot hold a
//! connection (and its slot) for ever while its handler waits.
//!
//! At the cap, a new connection evicts the open connection that has been
//! waiting longest without a request in flight (idle, or still sending a
//! request head): a pile of half-sent requests cannot keep a terminal or
//! HR out, and a request being answered is never cut. When every open
//! connection has a request in flight, the new one waits for a slot.
//!
//! The timeouts are watched here rather than by hyper's own header timer,
//! which also runs while a keep-alive connection waits for its next
//! request, and so would close idle connections at the header timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Default most connections open at once on one listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default time a request head may take from its first byte.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection may stay silent with no request in flight.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a request body may take to arrive after its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish after shutdown is asked.
const DRAIN: Duration = Duration::from_secs(10);

/// The limits of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request head must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this long
    /// without a byte either way.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// A request body must have arrived whole this long after its head;
    /// after that, reading it fails and the handler answers with an error.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

impl Limits {
    /// The default limits with another connection cap.
    pub fn with_max_connections(max: usize) -> Limits {
        Limits {
            max_connections: max.max(1),
            ..Limits::default()
        }
    }
}

/// What a connection's watcher needs to know, in milliseconds since the
/// listener started (0: not set).
#[derive(Debug, Default)]
struct ConnState {
    /// Last byte read or written.
    last_io: AtomicU64,
    /// First byte of a request head not yet complete.
    head_since: AtomicU64,
    /// Requests being answered.
    busy: AtomicUsize,
}

impl ConnState {
    /// When the connection last showed it wanted something: the start of
    /// its pending head, else its last byte.
    fn waiting_since(&self) -> u64 {
        match self.head_since.load(Ordering::Acquire) {
            0 => self.last_io.load(Ordering::Acquire),
            h => h,
        }
    }
}

/// Milliseconds since `epoch`, at least 1.
fn ms(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A socket that records when bytes move.
struct Watched<T> {
    io: T,
    state: Arc<ConnState>,
    epoch: Instant,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = ms(self.epoch);
            let s = &self.state;
            s.last_io.store(now, Ordering::Release);
            if s.busy.load(Ordering::Acquire) == 0 {
                let _ = s
                    .head_since
                    .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.last_io.store(ms(self.epoch), Ordering::Release);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.last_io.store(ms(self.epoch), Ordering::Release);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that fails once its deadline passes before it ends.
struct Deadline<B> {
    inner: B,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Deadline<B> {
    fn new(inner: B, within: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(within)),
        }
    }
}

/// Why reading a body failed after its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(f) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(f.map(|r| r.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a request as in flight until dropped.
struct Busy(Arc<ConnState>, Instant);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.last_io.store(ms(self.1), Ordering::Release);
    }
}

/// Open connections: state and the token that closes each.
type Registry = Mutex<HashMap<u64, (Arc<ConnState>, CancellationToken)>>;

/// Closes the connection waiting longest with no request in flight; false
/// when every connection has one.
fn evict_one(open: &Registry) -> bool {
    let m = open.lock().unwrap_or_else(|e| e.into_inner());
    let victim = m
        .values()
        .filter(|(s, t)| s.busy.load(Ordering::Acquire) == 0 && !t.is_cancelled())
        .min_by_key(|(s, _)| s.waiting_since());
    match victim {
        Some((_, t)) => {
            t.cancel();
            true
        }
        None => false,
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` fires, then
/// lets open connections finish (at most 10 s). Handlers can read the
/// peer's address with `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let epoch = Instant::now();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open: Arc<Registry> = Arc::default();
    let conns = TaskTracker::new();
    let mut next_id: u64 = 0;
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(5); x }
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!("accept on {:?}: {e}", listener.local_addr().ok());
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                evict_one(&open);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let state = Arc::new(ConnState::default());
        state.last_io.store(ms(epoch), Ordering::Release);
        let kill = CancellationToken::new();
        open.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (state.clone(), kill.clone()));
        let router = router.clone();
        let open = open.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            connection(stream, peer, router, state, epoch, limits, kill, shutdown).await;
            open.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
    conns.close();
    let _ = tokio::time::timeout(DRAIN, conns.wait()).await;
    Ok(())
}

/// One connection until it ends, times out, is evicted or shutdown drains it.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    state: Arc<ConnState>,
    epoch: Instant,
    limits: Limits,
    kill: CancellationToken,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        io: stream,
        state: state.clone(),
        epoch,
    });
    let svc_state = state.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        svc_state.head_since.store(0, Ordering::Release);
        svc_state.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(svc_state.clone(), epoch);
        let mut router = router.clone();
        let mut req = if hyper::body::Body::is_end_stream(req.body()) {
            req.map(axum::body::Body::new)
        } else {
            req.map(|b| axum::body::Body::new(Deadline::new(b, limits.body_timeout)))
        };
        req.extensions_mut().insert(ConnectInfo(peer));
        async move {
            let r = tower::Service::call(&mut router, req).await;
            drop(busy);
            r
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    // A request head may start at any moment, so the limits are looked at
    // at least four times per header timeout, not only at the deadline
    // known now.
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(10));
    let mut draining = false;
    loop {
        let deadline = next_deadline(&state, epoch, limits).min(tokio::time::Instant::now() + tick);
        tokio::select! {
            _ = &mut conn => return,
            _ = kill.cancelled() => return,
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(deadline) => {
                if expired(&state, epoch, limits) {
                    return;
                }
            }
        }
    }
}

/// When the connection's current limit runs out, if nothing moves.
fn next_deadline(state: &ConnState, epoch: Instant, limits: Limits) -> tokio::time::Instant {
    let at = |since_ms: u64, limit: Duration| {
        tokio::time::Instant::from_std(epoch + Duration::from_millis(since_ms) + limit)
    };
    if state.busy.load(Ordering::Acquire) > 0 {
        // A request is being answered: look again after the idle time.
        return tokio::time::Instant::now() + limits.idle_timeout;
    }
    match state.head_since.load(Ordering::Acquire) {
        0 => at(state.last_io.load(Ordering::Acquire), limits.idle_timeout),
        h => at(h, limits.header_timeout),
    }
}

/// True when the connection has outlived its header or idle limit.
fn expired(state: &ConnState, epoch: Instant, limits: Limits) -> bool {
    if state.busy.load(Ordering::Acquire) > 0 {
        return false;
    }
    let now = ms(epoch);
    let older = |since: u64, limit: Duration| {
        now.saturating_sub(since) >= u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
    };
    match state.head_since.load(Ordering::Acquire) {
        0 => older(state.last_io.load(Ordering::Acquire), limits.idle_timeout),
        h => older(h, limits.header_timeout),
    }
}
