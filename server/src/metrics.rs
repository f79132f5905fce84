//! What an operator watches: `GET /metrics` in Prometheus's text format, served on its own
//! address (`METRICS_ADDR`), never on the public port. Counters and histograms are recorded
//! where things happen (through the `metrics` facade); gauges are read when scraped. No label
//! names a user or a conversation: the only labels are close codes.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `qc_ws_connections` | gauge | WebSockets open on this node |
//! | `qc_ws_connects_total` | counter | WebSockets opened |
//! | `qc_ws_closes_total{code}` | counter | WebSockets closed, by close code (`client` when the client closed) |
//! | `qc_ws_queue_full_total` | counter | connections closed because they fell behind (4001) |
//! | `qc_messages_persisted_total` | counter | messages stored (resends not counted) |
//! | `qc_persist_seconds` | histogram | time to store one batch of messages |
//! | `qc_fanout_seconds` | histogram | time to acknowledge and hand out one stored batch |
//! | `qc_sync_requests_total` | counter | `sync` frames answered |
//! | `qc_bus_published_total` | counter | events published to the other nodes |
//! | `qc_bus_publish_failures_total` | counter | Redis messages that could not be published |
//! | `qc_bus_received_total` | counter | events received from other nodes |
//! | `qc_bus_lag_seconds` | histogram | from publishing on one node to receiving on this one |
//! | `qc_bus_resyncs_total` | counter | times this node told its clients to resync |
//! | `qc_bus_up` | gauge | 1 while the node hears the other nodes (cluster only) |
//! | `qc_calls_active` | gauge | calls ringing or answered, held on this node |
//! | `qc_db_pool_connections` | gauge | database connections open in the pool |
//! | `qc_db_pool_idle` | gauge | of which idle |
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DbBackend;

use crate::Services;

/// Latency buckets, in seconds: 0.1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process's recorder, installed on first use (one per process, however many servers
/// a test starts).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        handle
    })
}

/// Starts recording (before the server takes requests, so nothing is missed).
pub fn install() {
    handle();
}

/// The router of the metrics address: `GET /metrics` only.
pub fn router(services: &Services) -> Router {
    let state = (services.relay.clone(), services.core.clone());
    install();
    Router::new()
        .route("/metrics", get(render))
        .with_state(state)
}

type MetricsState = (Arc<crate::relay::Relay>, Arc<app::ssr::AppCore>);

async fn render(State((relay, core)): State<MetricsState>) -> String {
    metrics::gauge!("qc_ws_connections").set(relay.hub.connection_count() as f64);
    metrics::gauge!("qc_calls_active").set(relay.calls.len() as f64);
    if let Some(cluster) = &relay.cluster {
        metrics::gauge!("qc_bus_up").set(if cluster.healthy() { 1.0 } else { 0.0 });
    }
    let (size, idle) = match core.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = core.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::MySql => {
            let pool = core.db.get_mysql_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = core.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    metrics::gauge!("qc_db_pool_connections").set(f64::from(size));
    metrics::gauge!("qc_db_pool_idle").set(idle as f64);
    handle().render()
}
