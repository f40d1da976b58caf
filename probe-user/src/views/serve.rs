//! `mhpscope serve`: the stream's metrics over HTTP for Prometheus (OpenMetrics text at
//! `/metrics`). The source runs as for every view; a task pumps its updates into the shared
//! stream and each scrape computes the metrics from the model (see `metrics`).
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use prometheus_client::registry::Registry;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::oneshot,
};

use crate::{
    kernel::loader::Options,
    recording::replay::Player,
    recording::source::{self, Feed, Input},
    recording::stream::{Failure, Stream, Update},
    views::metrics,
    views::ViewOptions,
};

/// How often the source's updates are applied: often enough that a scrape is never stale by
/// more than this, rarely enough to cost nothing.
const PUMP_EVERY: Duration = Duration::from_millis(100);

pub async fn run(
    opts: &Options,
    input: Input,
    listen: SocketAddr,
    speed: Option<f64>,
    view: ViewOptions,
) -> Result<()> {
    // Installed first: a SIGTERM from now on shuts down cleanly instead of killing us.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let origin = input.origin();
    let player = Player::new(if input.is_replay() { speed } else { None });
    let feed = source::spawn(input, opts);
    // The first update says whether the source works at all (privileges, a readable file):
    // if not, fail now rather than serve an empty stream.
    let (feed, first) = tokio::task::spawn_blocking(move || {
        let first = feed.rx.recv();
        (feed, first)
    })
    .await
    .context("waiting for the source")?;
    let mut stream = Stream::new(origin.clone()).with_keep(view.keep);
    match first {
        Ok(Update::Failed(f)) => return Err(f.into()),
        Ok(update) => stream.apply(update),
        Err(_) => bail!("the source ended before sending anything"),
    }
    let stream = Arc::new(Mutex::new(stream));

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The bound address, not the asked one: with port 0 this is how a caller learns the port.
    eprintln!("mhpscope: serving metrics on http://{addr}/metrics (source {origin})");

    let (stop_tx, stop_rx) = oneshot::channel();
    let pumping = tokio::spawn(pump(feed, stream.clone(), player, stop_rx));
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/", get(index))
        .with_state(Arc::new(metrics::registry(stream, view.thresholds)));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
            }
        })
        .await;
    // Stops the source too (live tracing detaches its probes).
    let _ = stop_tx.send(());
    pumping.await.context("the update task")?;
    served.context("serving HTTP")
}

/// Applies the source's updates to the stream until told to stop, then stops the source. A
/// replay that ended stays as it is: Prometheus keeps scraping its final state.
async fn pump(feed: Feed, stream: Arc<Mutex<Stream>>, mut player: Player, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(PUMP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let mut s = stream.lock().unwrap_or_else(PoisonError::into_inner);
        player.pump(&feed.rx, &mut s, Instant::now());
        // Every source ends with a summary or a failure; anything else is a failure too.
        if player.drained() && !s.ended() {
            s.apply(Update::Failed(Failure::other(
                "the source ended without a summary",
            )));
        }
    }
    feed.stop();
}

async fn serve_metrics(State(registry): State<Arc<Registry>>) -> Response {
    match metrics::encode(&registry) {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding the metrics failed\n").into_response(),
    }
}

async fn index() -> &'static str {
    "mhpscope: memory hotplug metrics for Prometheus (OpenMetrics text) at /metrics\n"
}
