//! The kamrs daemon: read the config, bind the sockets, serve until a
//! signal.
//!
//! Start-up has a small, fixed contract that scripts and the end-to-end
//! tests rely on: once every socket is bound, stdout gets one line
//! `listening <proto>:<ip>:<port>` per socket (the real port, so `:0` works),
//! one `control <endpoint>` line (the control API in use, `unix:/path` or
//! `http://IP:PORT`, or `control none`) and then `ready`. Exit codes: 0
//! after SIGINT/SIGTERM, 1 when a socket cannot be bound or the location
//! store cannot be opened or read, 2 for a bad command line or config.
//! `--check` validates the config (and the
//! files start-up needs) and exits with the code start-up would have
//! (0, 1 or 2) without binding anything; `--man` (hidden) prints the
//! manual page.
//!
//! With a `[store]`, the table is preloaded from it before `ready`, and a
//! stop signal writes everything still queued ([`FLUSH_TIMEOUT`]) before
//! exiting.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser};
use tokio::signal::unix::{signal, SignalKind};

use kamrs::config::{Config, ConfigError};
use kamrs::logging;
use kamrs::peer::ListenAddr;
use kamrs::registrar::{Registrar, Settings};
use kamrs::route::Router;
use kamrs::state::Core;
use kamrs::stats::CoreStats;
use kamrs::transport::{self, Shutdown};
use kamrs::usrloc::{unix_now, LocationTable};

/// How long tasks get to finish after a stop signal before the runtime
/// drops them; the whole stop must stay well under a second.
const STOP_GRACE: Duration = Duration::from_millis(300);

/// How long a stop waits for the location store to write what is still
/// queued (write-back mode: up to `write_back_interval` of changes).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// SIP registrar with a Kamailio-compatible control API.
///
/// Every option overrides the same key of the config file; `--print-config`
/// shows the result.
#[derive(Debug, Parser)]
#[command(name = "kamrs", version, about)]
struct Cli {
    /// TOML config file; without it the embedded defaults are used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on, `udp:IP:PORT`, `tcp:`, `tls:`, `ws:` or
    /// `wss:IP:PORT` (IPv6 as `udp:[::1]:5060`; `tls:` and `wss:` need
    /// `[tls]` in the config). Repeatable; replaces the config's `listen`
    /// list.
    #[arg(short, long = "listen", value_name = "ADDR")]
    listen: Vec<ListenAddr>,

    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,

    /// Check the configuration and exit, like `kamailio -c`: the file
    /// loads and its values are valid, the subscriber list parses, the
    /// nonce secret is readable or can be created, the SQLite store's
    /// directory exists. Binds no socket and creates no file. Prints
    /// `config OK: …` and exits 0, or the error and exits 2 (bad config)
    /// or 1 (a file start-up needs).
    #[arg(long)]
    check: bool,

    /// Print this manual page (roff) and exit: `kamrs --man > kamrs.8`.
    #[arg(long, hide = true)]
    man: bool,

    /// More logging: -v info, -vv debug, -vvv trace. `RUST_LOG` wins over
    /// this, and this wins over `[log] level`.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Less logging: -q warnings and errors, -qq errors only.
    #[arg(short, long, action = ArgAction::Count)]
    quiet: u8,

    /// Expiry for bindings whose REGISTER states none (`default_expires`).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true,
          value_parser = kamrs::config::flag_seconds)]
    default_expires: Option<u32>,

    /// Shortest expiry accepted (`min_expires`).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true,
          value_parser = kamrs::config::flag_seconds)]
    min_expires: Option<u32>,

    /// Longer expiries are clamped to this (`max_expires`).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true,
          value_parser = kamrs::config::flag_seconds)]
    max_expires: Option<u32>,

    /// Most bindings per AoR, 0 for unlimited (`max_contacts`).
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = kamrs::config::flag_count)]
    max_contacts: Option<u32>,

    /// Control API endpoint, `unix:/path` or `http://IP:PORT`
    /// (`[ctl] listen`).
    #[arg(long, value_name = "ENDPOINT")]
    ctl: Option<common::Endpoint>,
}

impl Cli {
    /// The config file (or the defaults) with the command line applied.
    fn effective_config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if !self.listen.is_empty() {
            config.listen.clone_from(&self.listen);
        }
        let overrides = [
            (self.default_expires, &mut config.default_expires),
            (self.min_expires, &mut config.min_expires),
            (self.max_expires, &mut config.max_expires),
            (self.max_contacts, &mut config.max_contacts),
        ];
        for (flag, key) in overrides {
            if let Some(v) = flag {
                *key = v;
            }
        }
        if let Some(ctl) = &self.ctl {
            config.ctl.listen = ctl.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.man {
        return print_man();
    }
    let config = match cli.effective_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        let origin = match &cli.config {
            Some(path) => path.display().to_string(),
            None => "built-in defaults".to_owned(),
        };
        return match kamrs::check::check(&config, &origin) {
            Ok(summary) => {
                println!("config OK: {summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kamrs: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.print_config {
        print!("{}", config.to_toml_string());
        return ExitCode::SUCCESS;
    }
    // Kept to the end of main: dropping it writes the lines still queued.
    let _log = init_logging(&cli, &config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kamrs")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kamrs: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run(config));
    // Connection tasks still blocked on a peer are dropped here, bounded.
    runtime.shutdown_timeout(STOP_GRACE);
    code
}

/// `kamrs --man`: the manual page, generated from the command line above
/// (docs/man/kamrs.8 is its output, checked by the end-to-end tests).
fn print_man() -> ExitCode {
    use clap::CommandFactory;
    let man = clap_mangen::Man::new(Cli::command()).section("8");
    let mut out = std::io::stdout().lock();
    match man.render(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kamrs: cannot write the manual page: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr (stdout carries the start-up contract). The filter is
/// `RUST_LOG` when set, else `[log] level` moved by `-v`/`-q`.
fn init_logging(cli: &Cli, config: &Config) -> logging::Guard {
    let level = logging::level_for(config.log.level.as_str(), cli.verbose, cli.quiet);
    let format = match config.log.format {
        kamrs::config::LogFormat::Text => logging::Format::Text,
        kamrs::config::LogFormat::Json => logging::Format::Json,
    };
    let (guard, warning) = logging::init(level, format);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    guard
}

async fn run(config: Config) -> ExitCode {
    // Install the handlers before announcing `ready`, so a signal sent right
    // after it stops us cleanly instead of killing the process.
    let (mut sigterm, mut sigint, mut sighup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("kamrs: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };

    let mut listeners = Vec::with_capacity(config.listen.len());
    for listen in &config.listen {
        match transport::bind(listen) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("kamrs: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let mut announce = String::new();
    for listener in &listeners {
        match listener.local() {
            Ok(addr) => {
                tracing::info!("listening on {addr}");
                announce.push_str(&format!("listening {addr}\n"));
            }
            Err(e) => {
                eprintln!("kamrs: cannot read a bound socket's address: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // The control socket is bound before `ready` too; it serves once the
    // router exists.
    let ctl = match kamrs::rpc::bind(&config.ctl_settings()) {
        Ok(ctl) => ctl,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    };
    match ctl.endpoint() {
        Some(endpoint) => announce.push_str(&format!("control {endpoint}\n")),
        None => announce.push_str("control none\n"),
    }
    // The location table, filled from the store before `ready` so the
    // first REGISTER or lookup already sees every stored binding.
    let table = Arc::new(LocationTable::new().with_limits(config.table_limits()));
    // The sockets and connections requests to bindings leave by; a TCP
    // connection hears through it when its last binding went
    // (close_expired_tcp).
    let flows = kamrs::flow::Flows::new();
    {
        let flows = Arc::clone(&flows);
        table.on_flow_released(move |c| flows.released(c));
    }
    match kamrs::store::open(config.store.backend()).await {
        Ok(None) => {}
        Ok(Some(store)) => {
            if let Err(e) = kamrs::usrloc::preload(&table, &store, unix_now()).await {
                eprintln!("kamrs: cannot preload the location table: {e}");
                return ExitCode::from(1);
            }
            if table.attach_store(store).is_err() {
                eprintln!("kamrs: a location store was already attached");
                return ExitCode::from(1);
            }
            table.warn_if_over_limits();
        }
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    }
    let auth = match config
        .auth
        .authenticator(config.use_domain, config.pike.networks())
    {
        Ok(auth) => auth,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    };
    if auth.is_none() {
        if let Some(open) = config.listen.iter().find(|l| !l.addr.ip().is_loopback()) {
            // Only reachable with `allow_open_registrar = true`: say it at
            // every start, so nobody runs one by accident for long.
            tracing::warn!(
                "OPEN REGISTRAR: listening on {open} without authentication; anyone can register anyone's AoR. Set `[auth] mode = \"digest\"` to stop this."
            );
        }
    }
    if auth.is_none() && config.websocket.allowed_origins.is_empty() {
        if let Some(ws) = config.listen.iter().find(|l| l.proto.is_websocket()) {
            // A browser on any machine that reaches the listener (the
            // admin's own desk included) runs pages that may open it.
            tracing::warn!(
                "{ws} accepts WebSocket upgrades from any web page, without authentication: a page a browser on this network opens can register any AoR. Set `[auth] mode = \"digest\"` or `[websocket] allowed_origins`."
            );
        }
    }
    // The keepalive's secret, read before `ready` like every other start-up
    // failure.
    let ka_key = if kamrs::keepalive::Settings::from(&config).enabled() {
        match kamrs::keepalive::token::random_key() {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("kamrs: cannot read /dev/urandom for the keepalive's secret (needed with ka_mode != 0): {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    // The TLS certificate: a file that cannot be used stops the start
    // here, with the file and the reason.
    let tls = match config.tls_settings().map(kamrs::tls::Tls::load).transpose() {
        Ok(tls) => tls.map(Arc::new),
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(tls) = &tls {
        let cert = tls.summary();
        tracing::info!(certificate = %cert.certificate, sha256 = %cert.sha256_fingerprint, "tls certificate loaded");
    }
    // The webhook's token, read before `ready` too.
    let webhook_settings = match config.webhook_settings() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    };
    // The proxy's token key, read before `ready` too.
    let route_key = match config.route.secret_key() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(1);
        }
    };
    announce.push_str("ready\n");
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(announce.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // Nobody is reading stdout (closed pipe): serving is still useful.
        tracing::warn!("cannot write the start-up lines to stdout: {e}");
    }
    drop(stdout);

    let stats = Arc::new(CoreStats::default());
    tokio::spawn(Arc::clone(&table).run_expiry());
    let webhook =
        webhook_settings.map(|w| kamrs::webhook::Webhook::start(&table, w, Arc::clone(&stats)));
    // One secret keys the temporary GRUUs and the Record-Route tokens.
    let mut registrar =
        Registrar::new(Settings::from(&config), Arc::clone(&table)).with_secret(&route_key);
    if let Some(auth) = &auth {
        registrar = registrar.with_auth(Arc::clone(auth));
    }
    // One set of handles for the router and the control API.
    let mut core = Core::new(registrar, stats).with_flows(Arc::clone(&flows));
    if let Some(tls) = &tls {
        core = core.with_tls(Arc::clone(tls));
    }
    if let Some(key) = ka_key {
        let ka = Arc::new(kamrs::keepalive::Keepalive::new(
            kamrs::keepalive::Settings::from(&config),
            key,
            Arc::clone(&table),
            Arc::clone(&flows),
        ));
        tokio::spawn(Arc::clone(&ka).run());
        core = core.with_keepalive(ka);
    }
    if let Some(settings) = config.pike.settings() {
        let pike = Arc::new(kamrs::pike::Pike::new(settings));
        tokio::spawn(Arc::clone(&pike).run_sweeper());
        core = core.with_pike(pike);
    }
    let (stop, shutdown) = Shutdown::new();
    if config.route.mode != kamrs::proxy::Mode::Registrar {
        let proxy = Arc::new(kamrs::proxy::Proxy::new(
            config.route.settings(),
            kamrs::registrar::derive_key(&route_key, "kamrs record-route"),
            Arc::clone(&core.registrar),
            Arc::clone(&flows),
            config.listen.clone(),
            config.limits(),
            config.force_rport,
            config.use_domain,
        ));
        let mut until = shutdown.clone();
        tokio::spawn(Arc::clone(&proxy).run_timers(async move { until.wait().await }));
        tracing::info!(mode = config.route.mode.as_str(), "call delivery on");
        core = core.with_proxy(proxy);
    }
    let router = Router::new(config.limits(), core.clone()).with_force_rport(config.force_rport);
    let router = Arc::new(router);
    let mut tcp = config.tcp_settings();
    tcp.tls = tls.clone();
    let udp_workers = transport::udp::workers_for(config.udp_workers);
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            transport::spawn(
                l,
                Arc::clone(&router),
                tcp.clone(),
                udp_workers,
                Arc::clone(&flows),
                shutdown.clone(),
            )
        })
        .collect();
    let ctl = ctl.serve(core, kamrs::rpc::Settings::from(&config));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "kamrs ready");

    let name = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => reload(auth.as_deref(), tls.as_deref()),
        }
    };
    tracing::info!("{name} received, stopping");
    stop.trigger();
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    ctl.stop(deadline).await;
    for task in tasks {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            tracing::debug!("a listener did not stop in time; dropping it");
            break;
        }
    }
    if let Some(webhook) = &webhook {
        webhook.drain(deadline).await;
    }
    flush_store(&table).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGHUP: re-read what an admin edits by hand or a tool renews (the
/// subscriber list, the TLS certificate).
fn reload(auth: Option<&kamrs::auth::Authenticator>, tls: Option<&kamrs::tls::Tls>) {
    if auth.is_none() && tls.is_none() {
        tracing::info!("SIGHUP: nothing to reload (authentication is off, no [tls])");
    }
    if let Some(auth) = auth {
        match auth.subscribers().reload() {
            Ok(n) => tracing::info!("SIGHUP: subscriber list reloaded, {n} subscribers"),
            Err(e) => tracing::error!(
                "SIGHUP: subscriber list not reloaded, the old one stays in force: {e}"
            ),
        }
    }
    if let Some(tls) = tls {
        match tls.reload() {
            Ok(cert) => {
                tracing::info!(certificate = %cert.certificate, sha256 = %cert.sha256_fingerprint, "SIGHUP: tls certificate reloaded")
            }
            Err(e) => tracing::error!(
                "SIGHUP: tls certificate not reloaded, the old one stays in force: {e}"
            ),
        }
    }
}

/// Writes what the location store still has queued, bounded by
/// [`FLUSH_TIMEOUT`]; a store that keeps failing is retried until then.
/// Called after the transports stopped, so nothing new is queued.
async fn flush_store(table: &LocationTable) {
    let Some(store) = table.store() else {
        return;
    };
    let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, store.flush()).await {
            Ok(Ok(())) => {
                tracing::info!("{} location store flushed", store.name());
                return;
            }
            Ok(Err(e)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(
                    "flushing the {} location store failed, retrying: {e}",
                    store.name()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(Err(e)) => {
                tracing::error!(
                    "the {} location store could not write everything before exit: {e}",
                    store.name()
                );
                return;
            }
            Err(_) => {
                tracing::error!(
                    "the {} location store did not finish writing within {} s; changes still queued are lost",
                    store.name(),
                    FLUSH_TIMEOUT.as_secs()
                );
                return;
            }
        }
    }
}
