//! The request pipeline. The steps that need only the request's metadata are tower layers,
//! assembled in [`layers`] in the order they run; the steps that need the decoded message
//! (policy) are plain functions the handlers call first. Each layer that verifies something
//! leaves a typed value in the request extensions ([`Caller`], [`Officer`]) for later steps.

pub mod audit;
pub mod authn;
pub mod budget;
pub mod door;
pub mod identity;
pub mod limits;
pub mod policy;
pub mod rescue;

use rescue::Refusal;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::layer::util::{Identity, Stack};
use tower::{Layer, Service};

pub use audit::{AuditLayer, AuditSlot, Auditor, Facts, InFlight};
pub use authn::{Authn, Officer};
pub use budget::VerificationBudget;
pub use door::{Door, DoorGate};
pub use identity::{Caller, Identify};
pub use limits::Limits;

/// Paths served without a client certificate or a token, so probes and standard tools work.
const OPEN_PATHS: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether a path is served without credentials (and without an audit record).
pub fn is_open(path: &str) -> bool {
    OPEN_PATHS.iter().any(|p| path.starts_with(p))
}

/// The pipeline's layers, as one stack.
pub type Layers<C> = Stack<
    GateLayer<Limits<C>>,
    Stack<
        GateLayer<Authn>,
        Stack<GateLayer<Identify>, Stack<GateLayer<DoorGate>, Stack<AuditLayer, Identity>>>,
    >,
>;

/// The pipeline's layers, outermost first.
pub fn layers<C>(
    audit: AuditLayer,
    door: DoorGate,
    identify: Identify,
    authn: Authn,
    limits: Limits<C>,
    stages: StageTimes,
) -> Layers<C>
where
    C: governor::clock::Clock + Clone + Send + Sync + 'static,
{
    tower::ServiceBuilder::new()
        // Every request leaves a record, durable before its reply is released; outermost, so
        // the refusals of every later step are recorded too.
        .layer(audit)
        // Calls without a client certificate: limited per peer address before anything else.
        .layer(GateLayer(door, stages.clone()))
        // Who is calling: the unit named by the verified client certificate (mutual TLS).
        .layer(GateLayer(identify, stages.clone()))
        // Which officer: the bearer token, its signature, times, and its binding to that unit.
        .layer(GateLayer(authn, stages.clone()))
        // How often: the officer's, the unit's and the global rate, narrowest first.
        .layer(GateLayer(limits, stages))
        .into_inner()
}

/// Where each step's time goes (`lienthong_stage_duration_seconds{stage}`).
pub type StageTimes = crate::metrics::StageTimes;

/// A pipeline step that looks at a request's metadata and either lets it through (perhaps
/// leaving what it learnt in the extensions) or refuses it.
pub trait Gate: Clone + Send + Sync + 'static {
    /// Whether a refusal of this step waits for the handler to read the request, so that the
    /// record of the refused attempt names the citizen, procedure and dossier it was for. Only
    /// steps after identity (the unit is known) defer; the handler refuses before it does
    /// anything but parse.
    const DEFERRABLE: bool = false;

    /// The step's name in the stage metrics.
    const STAGE: &'static str;

    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal>;

    /// The step's answer, now or (for a step that asks another server, such as the fleet's
    /// shared rate limiter) later. By default, [`Gate::check`]'s answer, now.
    fn verdict(&self, request: &mut http::request::Parts) -> Verdict {
        Verdict::Now(self.check(request))
    }
}

/// A step's answer: given at once, or awaited.
pub enum Verdict {
    Now(Result<(), Refusal>),
    Later(BoxFuture<Result<(), Refusal>>),
}

/// A refusal a [`Gate`] has decided and the handler delivers once it has noted what the
/// request was for.
#[derive(Debug, Clone)]
pub struct Deferred(pub Refusal);

/// The citizen-data methods, whose refusals are deferred to their handlers.
const CITIZEN_SERVICE: &str = "/lienthong.gateway.v1.CitizenGateway/";

/// A [`Gate`] as a tower layer, timing its check.
#[derive(Clone)]
pub struct GateLayer<G>(pub G, pub StageTimes);

impl<S, G: Gate> Layer<S> for GateLayer<G> {
    type Service = GateService<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.0.clone(),
            stages: self.1.clone(),
        }
    }
}

/// The service a [`GateLayer`] wraps around the next step.
#[derive(Clone)]
pub struct GateService<S, G> {
    inner: S,
    gate: G,
    stages: StageTimes,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// After a step's answer: the next step, or the refusal (deferred to the handler when the step
/// may defer).
fn proceed<S, B, RB>(
    inner: &mut S,
    mut req: http::Request<B>,
    checked: Result<(), Refusal>,
    deferrable: bool,
) -> BoxFuture<Result<http::Response<RB>, S::Error>>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    if let Err(refusal) = checked {
        if deferrable {
            req.extensions_mut().insert(Deferred(refusal));
            return Box::pin(inner.call(req));
        }
        let response = refusal.to_status().into_http::<RB>();
        audit::note(req.extensions(), |f| f.refusal = Some(refusal));
        return Box::pin(async move { Ok(response) });
    }
    Box::pin(inner.call(req))
}

impl<S, G, B, RB> Service<http::Request<B>> for GateService<S, G>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
    G: Gate,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let deferrable = G::DEFERRABLE
            && path.starts_with(CITIZEN_SERVICE)
            && audit::recorded_method(path) == path;
        if !is_open(path) && req.extensions().get::<Deferred>().is_none() {
            let (mut parts, body) = req.into_parts();
            let started = std::time::Instant::now();
            let span = tracing::debug_span!(
                target: lienthong_telemetry::TRACE_TARGET,
                "stage",
                otel.name = G::STAGE
            );
            let verdict = span.in_scope(|| self.gate.verdict(&mut parts));
            let req = http::Request::from_parts(parts, body);
            return match verdict {
                Verdict::Now(checked) => {
                    self.stages.observe(G::STAGE, started.elapsed());
                    proceed(&mut self.inner, req, checked, deferrable)
                }
                Verdict::Later(answer) => {
                    // The service that was made ready goes with the call; this one keeps a
                    // clone for the next.
                    let clone = self.inner.clone();
                    let mut inner = std::mem::replace(&mut self.inner, clone);
                    let stages = self.stages.clone();
                    Box::pin(async move {
                        let checked = tracing::Instrument::instrument(answer, span).await;
                        stages.observe(G::STAGE, started.elapsed());
                        proceed(&mut inner, req, checked, deferrable).await
                    })
                }
            };
        }
        Box::pin(self.inner.call(req))
    }
}
