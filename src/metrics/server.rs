//! `GET /metrics` on the metrics bind address (loopback by default).

use super::{MetricsRegion, prometheus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// CPU time the endpoint thread has used, ns (what serving scrapes costs).
    cpu_ns: Arc<std::sync::atomic::AtomicU64>,
    pub addr: std::net::SocketAddr,
}

impl MetricsServer {
    pub fn start(
        region: &'static MetricsRegion,
        bind: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        let server = Arc::new(
            tiny_http::Server::http(bind)
                .map_err(|e| anyhow::anyhow!("binding metrics on {bind}: {e}"))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("metrics endpoint is not on an IP socket"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_ns = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (srv, st, cpu) = (server.clone(), stop.clone(), cpu_ns.clone());
        let thread = std::thread::Builder::new()
            .name("gc-metrics".into())
            .spawn(move || {
                let ctype =
                    tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4")
                        .expect("static header");
                while !st.load(Ordering::Acquire) {
                    let req = match srv.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(r)) => r,
                        Ok(None) => continue,
                        Err(_) => break,
                    };
                    let resp = if req.url() == "/metrics" {
                        region.metrics_scrapes.fetch_add(1, Ordering::Relaxed);
                        tiny_http::Response::from_string(prometheus::render(region))
                            .with_header(ctype.clone())
                    } else {
                        tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
                    };
                    let _ = req.respond(resp);
                    cpu.store(telemetry::thread_cpu_ns(), Ordering::Relaxed);
                }
            })?;
        tracing::info!(%addr, "metrics endpoint listening (/metrics)");
        Ok(Self {
            server,
            thread,
            stop,
            cpu_ns,
            addr,
        })
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Release);
        self.server.unblock();
        let _ = self.thread.join();
    }
}
