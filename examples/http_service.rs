//! A small HTTP service holding one instance of the KARS release workflow, the way a team
//! would embed kars in a tokio/axum service; the reference that `kars serve` grows from.
//!
//! - `GET /status`: where the instance stands and who may act, in words.
//! - `POST /act/{node}` (body: the outcome, if the node asks for one): the caller acts on the
//!   node; for an action, the body is `succeeded` or `failed` and the caller reports its result.
//!
//! Identity comes from the `X-Forwarded-User` header, which a trusted reverse proxy (an
//! OAuth2 proxy, a VPN gateway) sets after authenticating the caller and strips from what
//! clients send; the service looks the login up in the instance's roster (`logins:`). Do not
//! expose the service without such a proxy: anyone could claim any login.
//!
//! The journal lives in `KARS_JOURNAL` (default `./kars-journal`), the address is `KARS_ADDR`
//! (default `127.0.0.1:3000`); timers run on the system clock, and a restart catches up with everything due meanwhile. Ctrl-C stops it gracefully.
//!
//! ```text
//! cargo run --example http_service --features tokio
//! curl localhost:3000/status
//! curl -X POST -H 'X-Forwarded-User: erin' localhost:3000/act/B
//! curl -X POST -H 'X-Forwarded-User: bob' -d approved localhost:3000/act/F
//! ```

use std::error::Error;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use kars::workflow::InstanceId;
use kars::workflow::adapter::ConsoleNotifier;
use kars::workflow::driver::{Adapters, Driver, DriverConfig, Parts, Program, Start, SystemClock};
use kars::workflow::journal::FileStore;
use kars::workflow::service::{Handle, Service, SystemTimer};

type App = Handle<FileStore, SystemClock>;

/// The header the trusted proxy sets to the authenticated login.
const IDENTITY: &str = "x-forwarded-user";

async fn status(State(app): State<App>) -> String {
    app.read(|driver| {
        let now = app.now();
        let waiting = driver.instance().waiting(now);
        let verdicts = driver.who_can_act(now);
        let may: Vec<&str> = verdicts.iter().filter(|v| v.allowed()).map(|v| v.person.as_str()).collect();
        let who = if may.is_empty() { "nobody".to_owned() } else { may.join(", ") };
        let pending = driver.pending_effects().count();
        format!("{waiting}\nwho may act now: {who}\neffects pending: {pending}\n")
    })
    .await
}

async fn act(
    State(app): State<App>,
    Path(node): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let Some(login) = headers.get(IDENTITY).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::UNAUTHORIZED, format!("no `{IDENTITY}` header: the proxy did not authenticate you\n"));
    };
    let actor = match app.read(|driver| driver.roster().actor_for_login(login)).await {
        Ok(actor) => actor,
        Err(e) => return (StatusCode::FORBIDDEN, format!("{e}\n")),
    };
    let node = match node.parse() {
        Ok(node) => node,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let outcome = Some(body.trim().to_owned()).filter(|o| !o.is_empty());
    match app.act(actor, node, outcome).await {
        Ok(report) => {
            let pending = report.pending.len();
            (StatusCode::OK, format!("recorded ({pending} effect(s) to perform in the background)\n"))
        }
        Err(e) if e.is_refusal() => (StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml"))?;
    let program = Program::new(&kars::spec::load(&yaml, "kars-release.yaml")?)?;
    let dir = std::env::var("KARS_JOURNAL").unwrap_or_else(|_| "kars-journal".to_owned());
    let parts = Parts {
        store: FileStore::create_dir(&dir)?,
        clock: SystemClock,
        // Notifications to standard output; deploys and merges are left to an operator, who
        // reports their results through `POST /act/{node}` (see `Adapters` for real ones).
        adapters: Adapters::new(ConsoleNotifier::new(std::io::stdout())),
        config: DriverConfig::default(),
    };
    let id = InstanceId::new("kars-release")?;
    let (driver, _) = Driver::open_or_create(parts, &program, &id, Start::default())?;

    let service = Service::new(driver, SystemTimer);
    let app = Router::new().route("/status", get(status)).route("/act/{node}", post(act)).with_state(service.handle());
    // One shutdown signal for both: the HTTP server stops accepting, the loop journals the
    // effects in progress and stops.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(service.run(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));

    let addr = std::env::var("KARS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving instance `{id}` on http://{addr} (journal in `{dir}`)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        })
        .await?;
    running.await??;
    Ok(())
}
