//! The HTTP/1.1 server under every endpoint of the appliance (JSON-RPC, `/metrics`): hyper,
//! with the limits a public endpoint needs, on tiles.
//!
//! Each tile runs a single-threaded tokio runtime that accepts from the endpoint's one
//! listening socket and serves many connections at once, so a slow or idle client holds a few
//! bytes of state, never a thread. Requests are answered by a synchronous [`Handler`] on the
//! tile's thread: the endpoint's concurrency is its tile count.
//!
//! What a client gets for free is bounded ([`Limits`]): connections (in all and per source
//! address), header bytes (hyper also caps the count at 100), body bytes (checked against
//! `Content-Length` before anything is read, and again while reading), the time to send the
//! headers, the time to send the body, and the time a connection may move no byte in either
//! direction (a client that never reads its response is closed by that). Every refusal is
//! counted in [`HttpCounters`].
//!
//! An endpoint given a [`WebSocketHandler`] (PubSub) also accepts WebSocket upgrades on any
//! path: the upgraded connection keeps its place in the connection limits, its messages are
//! capped at the body limit, and the handler's session owns it from then on.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use telemetry::{Placement, Stage, StatsSlot, Tile, TileClock, Turn};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use hyper::Method;

/// An upgraded connection, as a WebSocket handler gets it.
pub type WebSocket = tokio_tungstenite::WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Serves the WebSocket sessions of an endpoint (on the tile's runtime).
pub trait WebSocketHandler: Send + Sync + 'static {
    /// Runs one session to its end; the connection closes when the future does.
    fn session(
        &self,
        ws: WebSocket,
        peer: SocketAddr,
        limits: Limits,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// What one endpoint allows each client.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Request line and headers together (hyper's read buffer; at least 8 KiB).
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// From a connection's first byte of a request to the end of its headers.
    pub header_timeout: Duration,
    /// To receive a request's whole body.
    pub body_timeout: Duration,
    /// A connection that moves no byte in either direction for this long is closed
    /// (keep-alive between requests, a client that stopped sending or stopped reading).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 50 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_ip: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

telemetry::declare_counters! {
    /// One HTTP endpoint's connections and what it refused.
    #[repr(C)]
    #[derive(Default)]
    pub struct HttpCounters {
        /// Connections accepted.
        accepted: Counter(Count) "http_connections_accepted",
        /// Connections closed at once: the endpoint or the source address was at its limit.
        refused: Counter(Count) "http_connections_refused",
        /// Connections open now.
        open: Gauge(Count) "http_connections_open",
        /// Connections closed for moving no byte for the idle timeout (or not finishing their
        /// headers in time).
        timed_out: Counter(Count) "http_connections_timed_out",
        /// Requests refused for a body over the limit (413).
        too_large: Counter(Count) "http_requests_too_large",
        /// Requests whose body did not arrive in time or in one piece (408 / 400).
        bad_body: Counter(Count) "http_requests_bad_body",
        /// Connections upgraded to WebSocket (endpoints that serve it).
        websockets: Counter(Count) "http_websocket_upgrades",
    }
}

/// A request as the handler sees it: the whole body, already within the limits.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub peer: SocketAddr,
    pub body: Bytes,
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// Answers one request, on the tile's thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Response;

    /// The answer to a request the server refused before the handler saw it (`status`: 413,
    /// 408, 400), in the endpoint's own format. The connection closes after it.
    fn refusal(&self, status: u16, reason: &str) -> Response {
        Response::new(status, "text/plain", reason)
    }
}

/// A running endpoint: its tiles and address.
pub struct HttpServer {
    stage: Stage,
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Bind `bind` and serve it from `tiles` tiles named `name-i`, whose time is charged to
    /// `stats` (shared: its counts are sums over the tiles).
    pub fn start<S: StatsSlot + Clone>(
        name: &'static str,
        bind: SocketAddr,
        tiles: usize,
        limits: Limits,
        handler: Arc<dyn Handler>,
        stats: S,
        counters: &'static HttpCounters,
    ) -> anyhow::Result<Self> {
        Self::start_with_websocket(name, bind, tiles, limits, handler, None, stats, counters)
    }

    /// [`Self::start`], also accepting WebSocket upgrades for `websocket`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_with_websocket<S: StatsSlot + Clone>(
        name: &'static str,
        bind: SocketAddr,
        tiles: usize,
        limits: Limits,
        handler: Arc<dyn Handler>,
        websocket: Option<Arc<dyn WebSocketHandler>>,
        stats: S,
        counters: &'static HttpCounters,
    ) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|e| anyhow::anyhow!("binding {name} on {bind}: {e}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            limits,
            handler,
            websocket,
            counters,
            per_ip: Mutex::new(HashMap::new()),
            busy_ns: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        let mut stage = Stage::new(name);
        for i in 0..tiles.max(1) {
            let tile = HttpTile::new(listener.try_clone()?, shared.clone())?;
            stage.launch(
                format!("gc-{name}-{i}"),
                tile,
                stats.clone(),
                Placement::default(),
            )?;
        }
        Ok(Self { stage, addr })
    }

    /// Stop accepting, give requests in progress a moment to finish, stop the tiles.
    pub fn shutdown(self) {
        self.stage.stop();
    }
}

/// What the tiles of one endpoint share.
struct Shared {
    limits: Limits,
    handler: Arc<dyn Handler>,
    websocket: Option<Arc<dyn WebSocketHandler>>,
    counters: &'static HttpCounters,
    /// Open connections by source address (entries removed at zero, so at most
    /// `max_connections` of them).
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Handler time not yet charged to a tile clock (ns).
    busy_ns: AtomicU64,
    /// Requests between their headers and their response, over all tiles.
    in_flight: AtomicUsize,
}

impl Shared {
    /// Admit a connection from `ip`, or refuse it (counted).
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        let mut per_ip = self.per_ip.lock();
        let open = self.counters.open.load(Ordering::Relaxed) as usize;
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        if open >= self.limits.max_connections || from_ip >= self.limits.max_connections_per_ip {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        per_ip.insert(ip, from_ip + 1);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot {
            shared: self.clone(),
            ip,
        })
    }
}

/// An admitted connection; gives its place back when dropped.
struct ConnSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long one turn runs the tile's event loop before looking at its stop flag.
const TURN: Duration = Duration::from_millis(50);
/// How long requests in progress get to finish when the endpoint stops.
const DRAIN: Duration = Duration::from_secs(2);

struct HttpTile {
    rt: tokio::runtime::Runtime,
    listener: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl HttpTile {
    fn new(listener: std::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            rt,
            listener: Some(listener),
            shared,
            accept: None,
        })
    }
}

impl Tile for HttpTile {
    fn on_start(&mut self) {
        let Some(std_listener) = self.listener.take() else {
            return;
        };
        let shared = self.shared.clone();
        let _guard = self.rt.enter();
        match tokio::net::TcpListener::from_std(std_listener) {
            Ok(listener) => {
                self.accept = Some(tokio::spawn(accept_loop(listener, shared)));
            }
            Err(e) => tracing::error!(error = %e, "HTTP listener unusable"),
        }
    }

    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        if stopping {
            if let Some(a) = self.accept.take() {
                a.abort();
            }
            // Requests in progress finish (their tasks run while the runtime is driven).
            let deadline = Instant::now() + DRAIN;
            while self.shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
                self.rt
                    .block_on(async { tokio::time::sleep(Duration::from_millis(5)).await });
            }
            return Turn::Done;
        }
        let started = Instant::now();
        self.rt.block_on(async { tokio::time::sleep(TURN).await });
        let busy = self.shared.busy_ns.swap(0, Ordering::Relaxed);
        let elapsed = started.elapsed().as_nanos() as u64;
        clock.split(busy.min(elapsed));
        Turn::Continue
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = shared.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            shared.clone(),
            Arc::new(slot),
        ));
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Arc<ConnSlot>,
) {
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let limits = shared.limits.clone();
    let service_shared = shared.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let shared = service_shared.clone();
        let slot = slot.clone();
        async move {
            if let Some(ws) = shared.websocket.clone()
                && is_websocket_upgrade(&req)
            {
                return Ok(upgrade(req, peer, &shared, ws, slot));
            }
            // Counted until answered or dropped (a client gone mid-body cancels this future).
            let _in_flight = InFlight::enter(&shared);
            let resp = answer(req, peer, &shared).await;
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let idle = limits.idle_timeout;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r
                    && e.is_timeout()
                {
                    shared.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            _ = tokio::time::sleep(idle / 4) => {
                let quiet = now_ms().saturating_sub(activity.load(Ordering::Relaxed));
                if quiet >= idle.as_millis() as u64 {
                    shared.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    return; // dropping the connection closes it
                }
            }
        }
    }
}

/// A request between its headers and its response (what shutdown waits for).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn is_websocket_upgrade(req: &hyper::Request<Incoming>) -> bool {
    let h = req.headers();
    let has = |name: hyper::header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.method() == Method::GET
        && has(hyper::header::CONNECTION, "upgrade")
        && has(hyper::header::UPGRADE, "websocket")
}

/// Answer a WebSocket handshake (101) and start the handler's session on the upgraded
/// connection, which keeps `slot` (its place in the connection limits) until it ends.
fn upgrade(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    ws: Arc<dyn WebSocketHandler>,
    slot: Arc<ConnSlot>,
) -> hyper::Response<Full<Bytes>> {
    use hyper::header::{
        CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
    };
    let headers = req.headers();
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return to_hyper(
            Response::new(400, "text/plain", "missing Sec-WebSocket-Key"),
            true,
        );
    };
    if headers
        .get(hyper::header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() != b"13")
    {
        let mut r = to_hyper(
            Response::new(426, "text/plain", "WebSocket version 13 only"),
            true,
        );
        r.headers_mut().insert(
            hyper::header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let limits = shared.limits.clone();
    let counters = shared.counters;
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(_) => return,
        };
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(limits.max_body_bytes))
            .max_frame_size(Some(limits.max_body_bytes));
        let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(config),
        )
        .await;
        counters.websockets.fetch_add(1, Ordering::Relaxed);
        ws.session(socket, peer, limits).await;
        drop(slot);
    });
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Read the body within the limits, then let the handler answer.
async fn answer(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
) -> hyper::Response<Full<Bytes>> {
    let limits = &shared.limits;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        shared.counters.too_large.fetch_add(1, Ordering::Relaxed);
        return refuse(shared, 413, "request body too large");
    }
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, limits.max_body_bytes);
    let body = match tokio::time::timeout(limits.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                shared.counters.too_large.fetch_add(1, Ordering::Relaxed);
                return refuse(shared, 413, "request body too large");
            }
            shared.counters.bad_body.fetch_add(1, Ordering::Relaxed);
            return refuse(shared, 400, "bad request body");
        }
        Err(_) => {
            shared.counters.bad_body.fetch_add(1, Ordering::Relaxed);
            return refuse(shared, 408, "request body timed out");
        }
    };
    let started = Instant::now();
    let r = shared.handler.handle(Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        peer,
        body,
    });
    shared
        .busy_ns
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    to_hyper(r, false)
}

fn refuse(shared: &Shared, status: u16, reason: &str) -> hyper::Response<Full<Bytes>> {
    // The rest of an oversized or broken body is not read: the connection closes.
    to_hyper(shared.handler.refusal(status, reason), true)
}

fn to_hyper(r: Response, close: bool) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(r.content_type),
    );
    if close {
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    resp
}

fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A socket that records when it last moved a byte either way.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touched(&self, moved: bool) {
        if moved {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.touched(buf.filled().len() > before);
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.touched(matches!(r, Poll::Ready(Ok(n)) if n > 0));
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
