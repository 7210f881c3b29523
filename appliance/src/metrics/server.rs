//! `GET /metrics` on the metrics bind address (loopback by default).

use super::{MetricsRegion, prometheus};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use telemetry::{Placement, Stage, Tile, TileClock, Turn};

pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    stage: Stage,
    /// CPU time the endpoint thread has used, ns (what serving scrapes costs).
    cpu_ns: Arc<AtomicU64>,
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
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let mut stage = Stage::new("metrics");
        stage.launch(
            "gc-metrics",
            MetricsTile {
                server: server.clone(),
                region,
                cpu_ns: cpu_ns.clone(),
                content_type: tiny_http::Header::from_bytes(
                    "Content-Type",
                    "text/plain; version=0.0.4",
                )
                .expect("static header"),
            },
            &region.metrics_endpoint,
            Placement::default(),
        )?;
        tracing::info!(%addr, "metrics endpoint listening (/metrics)");
        Ok(Self {
            server,
            stage,
            cpu_ns,
            addr,
        })
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn shutdown(self) {
        self.stage.request_stop();
        self.server.unblock();
        self.stage.stop();
    }
}

/// How long the endpoint waits for a scrape before looking at its stop flag.
const SCRAPE_WAIT: Duration = Duration::from_millis(200);

struct MetricsTile {
    server: Arc<tiny_http::Server>,
    region: &'static MetricsRegion,
    cpu_ns: Arc<AtomicU64>,
    content_type: tiny_http::Header,
}

impl Tile for MetricsTile {
    fn turn(&mut self, clock: &mut TileClock<'_>, stopping: bool) -> Turn {
        if stopping {
            return Turn::Done;
        }
        let got = self.server.recv_timeout(SCRAPE_WAIT);
        clock.idle();
        let req = match got {
            Ok(Some(r)) => r,
            Ok(None) => return Turn::Continue,
            Err(_) => return Turn::Done,
        };
        self.region.metrics_endpoint.add_in(1);
        let resp = if req.url() == "/metrics" {
            self.region
                .endpoints
                .metrics_scrapes
                .fetch_add(1, Ordering::Relaxed);
            tiny_http::Response::from_string(prometheus::render(self.region))
                .with_header(self.content_type.clone())
        } else {
            tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
        };
        let _ = req.respond(resp);
        self.region.metrics_endpoint.add_out(1);
        self.cpu_ns
            .store(telemetry::thread_cpu_ns(), Ordering::Relaxed);
        clock.busy();
        Turn::Continue
    }
}
