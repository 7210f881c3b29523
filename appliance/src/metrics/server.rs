//! `GET /metrics` on the metrics bind address (loopback by default), served by the same HTTP
//! server and limits as the RPC (`crate::http`), from one tile.

use super::{MetricsRegion, prometheus};
use crate::http::{Handler, HttpServer, Limits, Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct MetricsServer {
    http: HttpServer,
    /// CPU time the endpoint's tile has used, ns (what serving scrapes costs).
    cpu_ns: Arc<AtomicU64>,
    pub addr: std::net::SocketAddr,
}

/// What a scraper needs: few connections, small requests.
fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        max_connections: 64,
        max_connections_per_ip: 16,
        ..Limits::default()
    }
}

impl MetricsServer {
    pub fn start(
        region: &'static MetricsRegion,
        bind: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        Self::start_with_cluster(region, bind, None)
    }

    /// With `[cluster] enabled`, the node's cluster series too.
    pub fn start_with_cluster(
        region: &'static MetricsRegion,
        bind: std::net::SocketAddr,
        cluster: Option<Arc<cluster::ClusterView>>,
    ) -> anyhow::Result<Self> {
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let http = HttpServer::start(
            "metrics",
            bind,
            1,
            limits(),
            Arc::new(Scrapes {
                region,
                cpu_ns: cpu_ns.clone(),
                cluster,
            }),
            &region.metrics_endpoint,
            &region.metrics_http,
        )?;
        let addr = http.addr;
        tracing::info!(%addr, "metrics endpoint listening (/metrics)");
        Ok(Self { http, cpu_ns, addr })
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn shutdown(self) {
        self.http.shutdown();
    }
}

struct Scrapes {
    region: &'static MetricsRegion,
    cpu_ns: Arc<AtomicU64>,
    cluster: Option<Arc<cluster::ClusterView>>,
}

impl Handler for Scrapes {
    fn handle(&self, req: Request) -> Response {
        self.region.metrics_endpoint.add_in(1);
        let resp = if req.path == "/metrics" {
            self.region
                .endpoints
                .metrics_scrapes
                .fetch_add(1, Ordering::Relaxed);
            let mut text = prometheus::render(self.region);
            if let Some(c) = &self.cluster {
                super::cluster::render(c, &mut text);
            }
            Response::new(200, "text/plain; version=0.0.4", text)
        } else {
            Response::new(404, "text/plain", "see /metrics\n")
        };
        self.region.metrics_endpoint.add_out(1);
        // The endpoint has one tile: this thread's CPU time is the endpoint's.
        self.cpu_ns
            .store(telemetry::thread_cpu_ns(), Ordering::Relaxed);
        resp
    }
}
