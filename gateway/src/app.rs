//! The running gateway: [`App::build`] reads the TLS material, prepares the pipeline and binds
//! the listener (port 0 in tests); [`App::run_until_stopped`] serves until told to stop, then
//! drains in-flight calls within the grace period. Tests and `main` start it the same way.

use crate::audit::central::{CentralReader, Shipper};
use crate::audit::{AuditError, AuditLog, Pseudonyms, log};
use crate::audit_service::Audits;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::limits::shared::SharedLimiter;
use crate::pipeline::{
    self, AuditLayer, Auditor, Authn, Door, DoorGate, Identify, InFlight, Limits,
};
use crate::reload::Reloader;
use crate::service::Gateway;
use crate::tls;
use crate::upstream::Upstream;
use governor::clock::{Clock, DefaultClock};
use lienthong_proto::audit::v1::audit_service_server::AuditServiceServer;
use lienthong_proto::gateway::v1::citizen_gateway_server::CitizenGatewayServer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the TLS material is unusable: {0}")]
    Tls(String),
    #[error("the population database client cannot be set up: {0}")]
    Upstream(String),
    #[error("a shared backend cannot be set up: {0}")]
    Backend(String),
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A bound, not yet serving, gateway.
pub struct App<C: Clock = DefaultClock> {
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    admin_listener: Option<TcpListener>,
    http_listener: Option<TcpListener>,
    metrics: Arc<Metrics>,
    identify: Identify,
    reloader: Arc<Reloader<C>>,
    config: Config,
    authn: Authn,
    limits: Limits<C>,
    upstream: Upstream,
    auditor: Auditor,
}

impl App<DefaultClock> {
    /// Prepares the gateway with the real clock.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        Self::with_clock(config, DefaultClock::default()).await
    }
}

impl<C: Clock + Clone + Send + Sync + 'static> App<C> {
    /// Prepares the gateway with the given clock for its rate limits.
    pub async fn with_clock(config: Config, clock: C) -> Result<Self, AppError> {
        let metrics = Arc::new(Metrics::new(
            config.units.keys().map(|u| u.as_str()),
            config.catalog.iter().map(|p| p.code.as_str()),
        ));
        let upstream = Upstream::new(&config.upstream)
            .map_err(AppError::Upstream)?
            .with_metrics(metrics.upstream.clone());
        let a = &config.audit;
        let settings = log::Settings {
            dir: a.dir.clone(),
            chain_id: a.chain_id.clone(),
            signing_key: a.signing_key.clone(),
            checkpoint_every: a.checkpoint_every,
            checkpoint_interval: a.checkpoint_interval,
            max_batch: a.max_batch,
        };
        let log = tokio::task::spawn_blocking(move || AuditLog::open(settings))
            .await
            .map_err(|e| AppError::Upstream(format!("audit trail: {e}")))??;
        log.instrument(metrics.audit.clone());
        let auditor = Auditor {
            log,
            pseudonyms: Pseudonyms::new(&config.audit.pseudonym_key),
            metrics: metrics.clone(),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.listen,
                source,
            })?;
        let health_listener = bind_optional(config.health_listen).await?;
        let admin_listener = bind_optional(config.admin_listen).await?;
        let http_listener = bind_optional(config.http_listen).await?;
        crate::jwks::start(&config.auth).await;
        let authn = Authn::new(&config.auth).with_metrics(
            metrics.token_cache_hits.clone(),
            metrics.token_cache_misses.clone(),
        );
        let mut limits = Limits::new(config.global_rate, &config.units, clock)
            .with_batch_share(config.batch_share_percent);
        if let Some(shared) = &config.shared_limits {
            let limiter = SharedLimiter::new(shared.clone(), metrics.shared_limits.clone())
                .map_err(AppError::Backend)?;
            limits = limits.with_shared(limiter, &config.units);
        }
        let identify = Identify::new(&config);
        let reloader = Arc::new(Reloader::new(
            &config,
            identify.clone(),
            limits.clone(),
            authn.clone(),
            auditor.clone(),
        ));
        Ok(Self {
            listener,
            health_listener,
            admin_listener,
            http_listener,
            authn,
            metrics,
            identify,
            reloader,
            limits,
            upstream,
            auditor,
            config,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address of the plaintext health listener, if configured.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The address of the admin listener (`GET /metrics`), if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The HTTP/JSON API's address, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The configuration's reloader (SIGHUP, `POST /reload` on the admin listener).
    pub fn reloader(&self) -> Arc<Reloader<C>> {
        self.reloader.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, ends long streams, and waits
    /// up to the grace period for in-flight calls.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), AppError> {
        let config = self.config;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<CitizenGatewayServer<Gateway<C>>>()
            .await;
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        // Reflection lists what this port serves: the gateway, the audit service, health.
        let (reflection, reflection_v1alpha) = lienthong_proto::reflection::serve(&[
            "lienthong.gateway.v1.CitizenGateway",
            "lienthong.audit.v1.AuditService",
            "grpc.health.v1.Health",
        ])
        .map_err(|e| AppError::Tls(format!("reflection: {e}")))?;
        let (drain_tx, drain_rx) = watch::channel(false);
        let gateway = Gateway {
            environment: config.environment,
            upstream: self.upstream,
            limits: self.limits.clone(),
            budget: pipeline::VerificationBudget::new(config.verification_budget_per_day),
            auditor: self.auditor.clone(),
            draining: drain_rx.clone(),
            batch_idle: config.transport.batch_idle_timeout,
            authn: self.authn.clone(),
        };
        let mut audits = Audits::new(
            config.environment,
            self.auditor.clone(),
            std::iter::once(config.audit.signing_key.verifying_key())
                .chain(config.audit.previous_keys.iter().copied())
                .collect(),
        );
        // The central store: the shipper follows the trail; reviewers' queries of every
        // replica read it.
        let (ship_stop, ship_stop_rx) = watch::channel(false);
        let mut shipper = None;
        if let Some(central) = &config.audit.central {
            let reader = CentralReader::new(central)
                .map_err(|e| AppError::Backend(format!("audit.central: {e}")))?;
            audits = audits.with_central(reader);
            shipper = Some(tokio::spawn(
                Shipper::new(
                    self.auditor.log.clone(),
                    config.audit.chain_id.clone(),
                    central.clone(),
                    self.metrics.shipping.clone(),
                )
                .run(ship_stop_rx),
            ));
        }
        let audits = AuditServiceServer::new(audits)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.transport.max_response_bytes);
        health.set_serving::<AuditServiceServer<Audits>>().await;
        let service = CitizenGatewayServer::new(gateway)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.transport.max_response_bytes);
        let inflight = InFlight::counted(self.metrics.in_flight.clone());
        // Metrics on their own plaintext listener, up until the gateway has stopped.
        let admin = self.admin_listener.map(|listener| {
            tokio::spawn(crate::metrics::serve(
                listener,
                self.metrics.clone(),
                Some(self.reloader.as_fn()),
            ))
        });
        let door = Door::new(config.door.window, config.door.records_per_window);
        let door_gate = DoorGate::new(config.door.rate);
        let housekeeping = tokio::spawn(housekeeping(
            self.limits.clone(),
            door_gate.clone(),
            drain_rx.clone(),
        ));
        let door_summaries = tokio::spawn(door_summaries(
            door.clone(),
            self.auditor.log.clone(),
            config.door.window,
            drain_rx.clone(),
        ));
        let trail_watch = tokio::spawn(watch_trail::<C>(
            health.clone(),
            self.auditor.log.clone(),
            drain_rx,
        ));
        // Probes that cannot speak TLS read the same health states on a plaintext port.
        // It stays up through the drain (reporting NOT_SERVING) and stops with the gateway.
        let plain_health = self.health_listener.map(|listener| {
            tokio::spawn(
                Server::builder()
                    .add_service(health_service.clone())
                    .serve_with_incoming(TcpIncoming::from(listener)),
            )
        });
        // The handshakes: performed by our own accept loop, so that those that fail are
        // recorded (at the door, bounded like any refusal before an officer).
        let (failures_tx, failures_rx) = tokio::sync::mpsc::channel(1024);
        let tls_config = tls::server_config(&config).map_err(AppError::Tls)?;
        let (incoming, accepting) = tls::incoming(
            self.listener,
            tls_config.clone(),
            config.transport.tls_handshake_timeout,
            failures_tx.clone(),
            self.metrics.clone(),
        );
        let handshakes = tokio::spawn(record_handshakes(
            door.clone(),
            self.auditor.clone(),
            failures_rx,
        ));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let layers = pipeline::layers(
            AuditLayer::new(
                self.auditor.clone(),
                inflight.clone(),
                door.clone(),
                config.max_message_bytes,
                config.transport.request_timeout,
            ),
            door_gate,
            self.identify,
            self.authn,
            self.limits,
            self.metrics.stages.clone(),
        );
        // The HTTP/JSON API: its calls go through the same layers to the same service.
        let (http_stop, http_stop_rx) = watch::channel(false);
        let http_api = match self.http_listener {
            Some(listener) => {
                let (http_incoming, http_accepting) = tls::incoming(
                    listener,
                    crate::http_api::tls_config(&tls_config),
                    config.transport.tls_handshake_timeout,
                    failures_tx.clone(),
                    self.metrics.clone(),
                );
                let grpc =
                    tower::Layer::layer(&layers, tonic::service::Routes::new(service.clone()));
                let api = crate::http_api::HttpApi::new(
                    grpc,
                    door.clone(),
                    self.auditor.clone(),
                    crate::http_api::Settings {
                        max_body_bytes: config.http_max_body_bytes,
                        header_timeout: config.transport.tls_handshake_timeout,
                    },
                );
                let grace = config.shutdown_grace;
                let mut stop = http_stop_rx;
                Some((
                    tokio::spawn(api.serve(
                        http_incoming,
                        async move {
                            let _ = stop.wait_for(|s| *s).await;
                        },
                        grace,
                    )),
                    http_accepting,
                ))
            }
            None => None,
        };
        let t = &config.transport;
        let serve = Server::builder()
            .max_concurrent_streams(t.max_concurrent_streams)
            .http2_keepalive_interval(Some(t.keepalive_interval))
            .http2_keepalive_timeout(Some(t.keepalive_timeout))
            .timeout(t.request_timeout)
            .max_connection_age(t.max_connection_age)
            .max_connection_age_grace(t.max_connection_age_grace)
            .http2_max_header_list_size(t.max_header_list_bytes)
            .layer(layers)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(service)
            .add_service(audits)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        tokio::pin!(serve);
        let auditor = self.auditor.clone();
        // Before the trail closes: the door's counts, and a record for every call still in
        // flight.
        let close = |door: Door, inflight: InFlight| async move {
            for summary in door.summaries(log::timestamp_us(), true) {
                let _ = auditor.log.append(summary).await;
            }
            let cut = inflight.abandon_all(&auditor);
            if cut > 0 {
                tracing::warn!(
                    calls = cut,
                    "calls still in flight were cut and recorded as SHUTTING_DOWN"
                );
            }
            auditor.log.close().await;
        };
        tokio::select! {
            result = &mut serve => {
                accepting.abort();
                if let Some((api, accepting)) = &http_api {
                    api.abort();
                    accepting.abort();
                }
                handshakes.abort();
                door_summaries.abort();
                if let Some(h) = &plain_health {
                    h.abort();
                }
                if let Some(a) = &admin {
                    a.abort();
                }
                close(door, inflight).await;
                finish_shipping(ship_stop, shipper).await;
                return Ok(result?);
            }
            () = shutdown => {}
        }
        tracing::info!(grace = ?config.shutdown_grace, "shutting down: draining in-flight calls");
        health
            .set_not_serving::<CitizenGatewayServer<Gateway<C>>>()
            .await;
        let _ = drain_tx.send(true);
        let _ = stop_tx.send(());
        let _ = http_stop.send(true);
        accepting.abort();
        if let Some((_, accepting)) = &http_api {
            accepting.abort();
        }
        let result = match tokio::time::timeout(config.shutdown_grace, serve).await {
            Ok(result) => result.map_err(AppError::from),
            Err(_) => {
                tracing::warn!("grace period over; the calls still in flight were cut");
                Ok(())
            }
        };
        // The HTTP/JSON API drains within the same grace.
        if let Some((api, _)) = http_api
            && tokio::time::timeout(config.shutdown_grace, api)
                .await
                .is_err()
        {
            tracing::warn!("HTTP/JSON calls still in flight were cut");
        }
        housekeeping.abort();
        trail_watch.abort();
        door_summaries.abort();
        // Failed handshakes still being recorded get a moment to land before the trail closes.
        let mut handshakes = handshakes;
        if tokio::time::timeout(Duration::from_secs(1), &mut handshakes)
            .await
            .is_err()
        {
            handshakes.abort();
        }
        if let Some(h) = plain_health {
            h.abort();
        }
        if let Some(a) = admin {
            a.abort();
        }
        // Last: the final checkpoint is signed once no call can add a record.
        close(door, inflight).await;
        finish_shipping(ship_stop, shipper).await;
        result
    }
}

/// After the trail is closed: the shipper's last pass (bounded; what it cannot ship is shipped
/// at the next start).
async fn finish_shipping(stop: watch::Sender<bool>, shipper: Option<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    if let Some(shipper) = shipper
        && tokio::time::timeout(Duration::from_secs(10), shipper)
            .await
            .is_err()
    {
        tracing::warn!(
            "the last shipping pass to the central audit store did not finish; the rest is shipped at the next start"
        );
    }
}

/// Binds an optional listener.
async fn bind_optional(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, AppError> {
    match addr {
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| AppError::Bind { addr, source }),
        None => Ok(None),
    }
}

/// Reports NOT_SERVING on the health service while the audit trail cannot be written, so that
/// a load balancer sends calls elsewhere while this replica refuses them, and SERVING again
/// once it can.
async fn watch_trail<C: Clock + Clone + Send + Sync + 'static>(
    health: tonic_health::server::HealthReporter,
    log: AuditLog,
    mut draining: watch::Receiver<bool>,
) {
    use tonic_health::ServingStatus::{NotServing, Serving};
    let set = |status| {
        let health = health.clone();
        async move {
            health.set_service_status("", status).await;
            for name in [
                <CitizenGatewayServer<Gateway<C>> as tonic::server::NamedService>::NAME,
                <AuditServiceServer<Audits> as tonic::server::NamedService>::NAME,
            ] {
                health.set_service_status(name, status).await;
            }
        }
    };
    loop {
        tokio::select! {
            () = log.until_failed(true) => {
                tracing::error!("the audit trail cannot be written: reporting NOT_SERVING until it can");
                set(NotServing).await;
            }
            () = crate::service::drained(&mut draining) => return,
        }
        tokio::select! {
            () = log.until_failed(false) => {
                tracing::warn!("the audit trail is writable again: reporting SERVING");
                set(Serving).await;
            }
            () = crate::service::drained(&mut draining) => return,
        }
    }
}

/// Records the TLS handshakes that failed, through the door (a few per peer and window, the
/// rest counted in its summaries).
async fn record_handshakes(
    door: Door,
    auditor: Auditor,
    mut failures: tokio::sync::mpsc::Receiver<tls::HandshakeFailure>,
) {
    while let Some(f) = failures.recv().await {
        let refusal = crate::pipeline::rescue::Refusal::TlsHandshake {
            timed_out: f.timed_out,
            detail: f.detail,
        };
        let time_us = log::timestamp_us();
        if !door.admit(f.peer.ip(), &refusal, "", time_us) {
            continue;
        }
        let code = refusal.code() as i32;
        let facts = pipeline::Facts {
            refusal: Some(refusal),
            ..Default::default()
        };
        let peer = f.peer.to_string();
        let entry = auditor.entry(
            &facts,
            &pipeline::audit::Call {
                method: HANDSHAKE_METHOD,
                peer: &peer,
                time_us,
                latency_us: 0,
                code,
            },
        );
        if auditor.log.append(entry).await.is_err() {
            tracing::warn!(%peer, "a failed TLS handshake could not be recorded: the trail is failing");
        }
    }
}

/// The method recorded for a failed TLS handshake.
pub const HANDSHAKE_METHOD: &str = "(TLS handshake)";

/// Writes the door's summary records as their windows end, until the drain begins.
async fn door_summaries(
    door: Door,
    log: AuditLog,
    window: Duration,
    mut draining: watch::Receiver<bool>,
) {
    let tick = (window / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {
                for summary in door.summaries(log::timestamp_us(), false) {
                    if log.append(summary).await.is_err() {
                        return;
                    }
                }
            }
            () = crate::service::drained(&mut draining) => return,
        }
    }
}

/// Forgets idle officers' and peers' limiter state once a minute, until the drain begins.
async fn housekeeping<C: Clock + Clone>(
    limits: Limits<C>,
    door: DoorGate,
    mut draining: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {
                limits.forget_idle();
                door.forget_idle();
            }
            () = crate::service::drained(&mut draining) => return,
        }
    }
}
