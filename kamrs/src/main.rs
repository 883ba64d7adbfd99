//! The kamrs daemon: read the config, bind the sockets, serve until a
//! signal.
//!
//! Start-up has a small, fixed contract that scripts and the end-to-end
//! tests rely on: once every socket is bound, stdout gets one line
//! `listening <proto>:<ip>:<port>` per socket (the real port, so `:0` works)
//! and then `ready`. Exit codes: 0 after SIGINT/SIGTERM, 1 when a socket
//! cannot be bound, 2 for a bad command line or config.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser};
use tokio::signal::unix::{signal, SignalKind};

use kamrs::config::{Config, ConfigError, ListenAddr};
use kamrs::registrar::{Registrar, Settings};
use kamrs::route::Router;
use kamrs::stats::CoreStats;
use kamrs::transport::{self, Shutdown, TcpSettings};
use kamrs::usrloc::LocationTable;

/// How long tasks get to finish after a stop signal before the runtime
/// drops them; the whole stop must stay well under a second.
const STOP_GRACE: Duration = Duration::from_millis(300);

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

    /// Address to listen on, `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 as
    /// `udp:[::1]:5060`). Repeatable; replaces the config's `listen` list.
    #[arg(short, long = "listen", value_name = "ADDR")]
    listen: Vec<ListenAddr>,

    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,

    /// More logging: -v info, -vv debug, -vvv trace. `RUST_LOG` wins over
    /// this, and this wins over `[log] level`.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// Expiry for bindings whose REGISTER states none (`default_expires`).
    #[arg(long, value_name = "SECONDS")]
    default_expires: Option<u32>,

    /// Shortest expiry accepted (`min_expires`).
    #[arg(long, value_name = "SECONDS")]
    min_expires: Option<u32>,

    /// Longer expiries are clamped to this (`max_expires`).
    #[arg(long, value_name = "SECONDS")]
    max_expires: Option<u32>,

    /// Most bindings per AoR, 0 for unlimited (`max_contacts`).
    #[arg(long, value_name = "N")]
    max_contacts: Option<u32>,
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
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.effective_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kamrs: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", config.to_toml_string());
        return ExitCode::SUCCESS;
    }
    init_logging(cli.verbose, &config);
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

/// Logs go to stderr (stdout carries the start-up contract). The filter is
/// `RUST_LOG` when set, else `-v`, else `[log] level`.
fn init_logging(verbose: u8, config: &Config) {
    use tracing_subscriber::EnvFilter;
    let fallback = match verbose {
        0 => config.log.level.as_str(),
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut bad_rust_log = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            bad_rust_log = Some(format!("ignoring RUST_LOG={spec:?}: {e}"));
            EnvFilter::new(fallback)
        }),
        _ => EnvFilter::new(fallback),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(warning) = bad_rust_log {
        tracing::warn!("{warning}");
    }
}

async fn run(config: Config) -> ExitCode {
    // Install the handlers before announcing `ready`, so a signal sent right
    // after it stops us cleanly instead of killing the process.
    let (mut sigterm, mut sigint) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
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
    let table = Arc::new(LocationTable::new());
    tokio::spawn(Arc::clone(&table).run_expiry());
    let registrar = Registrar::new(Settings::from(&config), table);
    let router = Arc::new(
        Router::new(config.limits(), registrar, stats).with_force_rport(config.force_rport),
    );
    let tcp = TcpSettings::from_config(&config);
    let (stop, shutdown) = Shutdown::new();
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|l| transport::spawn(l, Arc::clone(&router), tcp, shutdown.clone()))
        .collect();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "kamrs ready");

    let name = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    tracing::info!("{name} received, stopping");
    stop.trigger();
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for task in tasks {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            tracing::debug!("a listener did not stop in time; dropping it");
            break;
        }
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
