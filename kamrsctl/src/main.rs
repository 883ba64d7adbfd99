//! `kamrsctl`: the command-line client of the kamrs control API, in the
//! spirit of Kamailio's `kamcmd`: `kamrsctl ul.dump`, `kamrsctl ul.lookup
//! alice`, `kamrsctl ul.rm alice`, rendered as tables or, with `--json`, as
//! the raw JSON-RPC result for scripts and `jq`.
//!
//! Exit codes: 0 ok, 1 not found, 2 usage (including arguments the daemon
//! refused), 3 daemon unreachable (or refused us), 4 other daemon errors.
//! Every failure is one line on stderr saying what to do.

mod client;
mod dump;
mod escape;
mod render;
mod subscriber;
mod values;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use common::api::{ClientError, CtlClient};
use common::types::TABLE;
use common::Endpoint;

use client::{exit, Failure, Target};

#[derive(Parser, Debug)]
#[command(
    name = "kamrsctl",
    version = common::VERSION,
    about = "Control client for the kamrs SIP registrar",
    after_help = "Exit codes: 0 ok, 1 not found, 2 usage, 3 kamrs unreachable, 4 other kamrs error."
)]
struct Cli {
    /// Control endpoint of the daemon: unix:/path or http://IP:PORT.
    #[arg(long, global = true, env = "KAMRSCTL_CTL", value_name = "ENDPOINT",
          default_value_t = Endpoint::default_unix())]
    ctl: Endpoint,

    /// Bearer token for an HTTP endpoint that requires one (its
    /// ctl.token_file). Prefer the environment variable: a flag shows up
    /// in `ps`.
    #[arg(long, global = true, env = "KAMRSCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Print the raw JSON-RPC result (pretty) instead of a table.
    #[arg(long, global = true)]
    json: bool,

    /// Seconds to wait for the daemon.
    #[arg(long, global = true, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every registered AoR and its contacts.
    #[command(name = "ul.dump")]
    UlDump {
        /// Only the AoR names.
        #[arg(long)]
        brief: bool,
    },
    /// The contacts of one AoR.
    #[command(name = "ul.lookup")]
    UlLookup { aor: String },
    /// Remove an AoR and all its contacts.
    #[command(name = "ul.rm")]
    UlRm { aor: String },
    /// Remove one contact of an AoR.
    #[command(name = "ul.rm_contact")]
    UlRmContact { aor: String, contact: String },
    /// Add (or replace) a contact of an AoR.
    #[command(name = "ul.add")]
    UlAdd {
        aor: String,
        /// SIP URI of the contact, e.g. sip:alice@192.0.2.10:5060.
        contact: String,
        /// Seconds until it expires; 0 (the default) never expires.
        // Negative numbers reach the parser, which says what is allowed,
        // instead of clap's "to pass '-1' as a value, use '-- -1'".
        #[arg(long, default_value_t = 0, value_name = "SECONDS",
              allow_negative_numbers = true, value_parser = values::expires)]
        expires: u32,
        /// q-value 0..1; -1 (the default) leaves it unset.
        #[arg(long, default_value_t = -1.0, allow_negative_numbers = true,
              value_parser = values::q)]
        q: f64,
        /// Path header value (RFC 3327); none by default.
        #[arg(long)]
        path: Option<String>,
        /// Binding flags (Kamailio's `flags`).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true,
              value_parser = values::bits)]
        flags: u32,
        /// Branch flags (Kamailio's `cflags`).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true,
              value_parser = values::bits)]
        cflags: u32,
        /// Method bitmask; all methods by default.
        #[arg(long, default_value_t = u32::MAX, allow_negative_numbers = true,
              value_parser = values::bits)]
        methods: u32,
    },
    /// Write the table to the store (nothing to do without one).
    #[command(name = "ul.flush")]
    UlFlush,
    /// Statistics: all, a group (`usrloc:`), or names.
    Stats {
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Zero counters: all, a group (`registrar:`), or names.
    #[command(name = "stats.reset")]
    StatsReset {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// How long kamrs has been running.
    #[command(name = "core.uptime")]
    CoreUptime,
    /// kamrs's version.
    #[command(name = "core.version")]
    CoreVersion,
    /// Version, store backend and mode, authentication, flood filter.
    #[command(name = "core.info")]
    CoreInfo,
    /// AoRs with a live binding in the store's copy of the table.
    #[command(name = "ul.db_users")]
    UlDbUsers,
    /// Live bindings in the store's copy of the table.
    #[command(name = "ul.db_contacts")]
    UlDbContacts,
    /// Stored bindings past their expiry, not yet cleaned up.
    #[command(name = "ul.db_expired_contacts")]
    UlDbExpiredContacts,
    /// The control API's methods.
    #[command(name = "system.listMethods")]
    ListMethods,
    /// Who may register: add, remove, list subscribers (`[auth] mode =
    /// "digest"`).
    #[command(subcommand)]
    Subscriber(SubscriberCommand),
    /// The flood filter's busiest sources, blocked ones first.
    #[command(name = "pike.top")]
    PikeTop {
        /// How many sources to show.
        #[arg(default_value_t = common::types::PIKE_TOP_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=200_000))]
        n: u32,
    },
    /// Print a shell completion script: `kamrsctl completions bash > …`.
    Completions { shell: Shell },
}

#[derive(Subcommand, Debug)]
enum SubscriberCommand {
    /// Add a subscriber, or set a new password for one. The password is
    /// asked for (twice, not echoed), or read from the first line of stdin
    /// with --password-stdin; never from the command line. Only its HA1
    /// hashes reach kamrs.
    Add {
        #[arg(value_name = "USER@DOMAIN")]
        subscriber: String,
        /// Read the password from the first line of stdin (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a subscriber.
    Rm {
        #[arg(value_name = "USER@DOMAIN")]
        subscriber: String,
    },
    /// List the subscribers (names only: hashes never leave kamrs).
    List,
    /// Re-read the subscriber file after editing it by hand.
    Reload,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Command::Completions { shell } = cli.command {
        let shell = match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(shell, &mut Cli::command(), "kamrsctl", &mut io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kamrsctl: cannot start: {}", escape::safe(&e.to_string()));
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // The message may quote what the daemon or a phone sent.
            eprintln!("kamrsctl: {}", escape::safe(&f.message));
            ExitCode::from(f.code)
        }
    }
}

/// A bad command line: clap's message (exit 2, or 0 for --help), except
/// an extra argument to `subscriber add`, which may well be a password:
/// that is never echoed, and the message says where passwords go.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let adding = args
        .iter()
        .position(|a| a == "subscriber")
        .is_some_and(|i| args[i + 1..].iter().any(|a| a == "add"));
    if adding
        && matches!(
            e.kind(),
            ErrorKind::UnknownArgument | ErrorKind::TooManyValues
        )
    {
        eprintln!(
            "kamrsctl: subscriber add takes no password on the command line (it would show in `ps` and the shell history): type it at the prompt, or pipe it in with --password-stdin; usage: kamrsctl subscriber add USER@DOMAIN [--password-stdin]"
        );
        return ExitCode::from(exit::USAGE);
    }
    if let Some(line) = values::usage_line(&e) {
        eprintln!("kamrsctl: {}", escape::safe(&line));
        return ExitCode::from(exit::USAGE);
    }
    // Prints to stdout (help, version) or stderr (errors) as clap does.
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE))
}

/// Where output goes: text, or nothing on a closed pipe (`| head`).
fn print(write: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(
            exit::FAILED,
            format!("cannot write the output: {e}"),
        )),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot encode the result: {e}")))?;
    print(|out| render::pretty_json(&text, out))
}

/// Adds what was not found, and how to see what exists, to a 404.
fn not_found_hint(f: Failure, aor: &str, contact: Option<&str>) -> Failure {
    use common::api::error::{AOR_NOT_FOUND, CONTACT_NOT_FOUND};
    if f.code != exit::NOT_FOUND {
        return f;
    }
    match (f.message.as_str(), contact) {
        (AOR_NOT_FOUND, _) => Failure::new(
            exit::NOT_FOUND,
            format!("AOR not found: {aor} (`kamrsctl ul.dump --brief` lists the registered AoRs)"),
        ),
        (CONTACT_NOT_FOUND, Some(c)) => Failure::new(
            exit::NOT_FOUND,
            format!("Contact not found: {c} is not bound to {aor} (`kamrsctl ul.lookup {aor}` lists its contacts)"),
        ),
        _ => f,
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let target = Target {
        endpoint: cli.ctl.clone(),
        token: cli.token.clone().filter(|t| !t.is_empty()),
        timeout: Duration::from_secs(cli.timeout.max(1)),
    };
    let c = client::connect(&target).await?;
    let table = TABLE.to_owned();
    let fail = |m: &'static str| move |e: ClientError| client::cli_failure(m, e);
    match cli.command {
        Command::UlDump { brief } => dump::run(&c, brief, cli.json).await,
        Command::UlLookup { aor } => {
            let l = c
                .ul_lookup(table, aor.clone())
                .await
                .map_err(fail("ul.lookup"))
                .map_err(|f| not_found_hint(f, &aor, None))?;
            if cli.json {
                return json(&l);
            }
            print(|out| render::lookup(&l, out))
        }
        Command::UlRm { aor } => {
            c.ul_rm(table, aor.clone())
                .await
                .map_err(fail("ul.rm"))
                .map_err(|f| not_found_hint(f, &aor, None))?;
            done(cli.json, || format!("removed AoR {aor}"))
        }
        Command::UlRmContact { aor, contact } => {
            c.ul_rm_contact(table, aor.clone(), contact.clone())
                .await
                .map_err(fail("ul.rm_contact"))
                .map_err(|f| not_found_hint(f, &aor, Some(&contact)))?;
            done(cli.json, || format!("removed {contact} from {aor}"))
        }
        Command::UlAdd {
            aor,
            contact,
            expires,
            q,
            path,
            flags,
            cflags,
            methods,
        } => {
            let path = path.unwrap_or_else(|| "0".to_owned());
            c.ul_add(
                table,
                aor.clone(),
                contact.clone(),
                expires,
                q,
                path,
                flags,
                cflags,
                methods,
            )
            .await
            .map_err(fail("ul.add"))?;
            done(cli.json, || {
                let until = if expires == 0 {
                    "permanent".to_owned()
                } else {
                    format!("expires in {}", render::duration(u64::from(expires)))
                };
                format!("added {contact} to {aor} ({until})")
            })
        }
        Command::UlFlush => {
            c.ul_flush().await.map_err(fail("ul.flush"))?;
            done(cli.json, || "flushed".to_owned())
        }
        Command::Stats { names } => {
            let names = if names.is_empty() {
                vec!["all".to_owned()]
            } else {
                names
            };
            let lines = c
                .get_statistics(names)
                .await
                .map_err(fail("stats.get_statistics"))?;
            if cli.json {
                return json(&lines);
            }
            print(|out| render::stats(&lines, out))
        }
        Command::StatsReset { names } => {
            c.reset_statistics(names)
                .await
                .map_err(fail("stats.reset_statistics"))?;
            done(cli.json, || "counters reset".to_owned())
        }
        Command::CoreUptime => {
            let u = c.core_uptime().await.map_err(fail("core.uptime"))?;
            if cli.json {
                return json(&u);
            }
            print(|out| render::uptime(&u, out))
        }
        Command::CoreVersion => {
            let v = c.core_version().await.map_err(fail("core.version"))?;
            if cli.json {
                return json(&v);
            }
            print(|out| writeln!(out, "{}", escape::safe(&v)))
        }
        Command::CoreInfo => {
            let i = c.core_info().await.map_err(fail("core.info"))?;
            if cli.json {
                return json(&i);
            }
            print(|out| {
                writeln!(out, "version: {}", escape::safe(&i.version))?;
                writeln!(
                    out,
                    "store: {} ({})",
                    escape::safe(&i.store),
                    escape::safe(&i.store_mode)
                )?;
                writeln!(out, "auth: {}", escape::safe(&i.auth))?;
                writeln!(out, "pike: {}", if i.pike { "on" } else { "off" })
            })
        }
        Command::UlDbUsers | Command::UlDbContacts | Command::UlDbExpiredContacts => {
            let (name, n) = match &cli.command {
                Command::UlDbUsers => ("ul.db_users", c.ul_db_users("location".into()).await),
                Command::UlDbContacts => {
                    ("ul.db_contacts", c.ul_db_contacts("location".into()).await)
                }
                _ => (
                    "ul.db_expired_contacts",
                    c.ul_db_expired_contacts("location".into()).await,
                ),
            };
            let n = n.map_err(fail(name))?;
            if cli.json {
                return json(&n);
            }
            print(|out| writeln!(out, "{n}"))
        }
        Command::ListMethods => {
            let m = c.list_methods().await.map_err(fail("system.listMethods"))?;
            if cli.json {
                return json(&m);
            }
            print(|out| {
                m.iter()
                    .try_for_each(|name| writeln!(out, "{}", escape::safe(name)))
            })
        }
        Command::Subscriber(cmd) => subscriber_command(&c, cmd, cli.json).await,
        Command::PikeTop { n } => {
            let top = c.pike_top(Some(n)).await.map_err(fail("pike.top"))?;
            if cli.json {
                return json(&top);
            }
            print(|out| render::pike_top(&top, out))
        }
        Command::Completions { .. } => Ok(()),
    }
}

/// `kamrsctl subscriber add|rm|list|reload`.
async fn subscriber_command(
    c: &impl CtlClient,
    cmd: SubscriberCommand,
    json_out: bool,
) -> Result<(), Failure> {
    let fail = |m: &'static str| move |e: ClientError| client::cli_failure(m, e);
    match cmd {
        SubscriberCommand::Add {
            subscriber: who,
            password_stdin,
        } => {
            let (user, domain) = subscriber::parse_subscriber(&who)?;
            // The realm first: if authentication is off or kamrs is not
            // there, nobody types a password for nothing.
            let realm = c
                .auth_realm(domain.clone())
                .await
                .map_err(fail("auth.realm"))?;
            let password = if password_stdin {
                subscriber::password_from(io::stdin().lock())?
            } else {
                subscriber::password_from_prompt(&format!("{user}@{domain}"))?
            };
            let (ha1, ha1_sha256) = subscriber::ha1s(&user, &realm, &password);
            drop(password);
            c.subscriber_add(user.clone(), domain.clone(), ha1, ha1_sha256)
                .await
                .map_err(fail("subscriber.add"))?;
            done(json_out, || {
                format!("subscriber {user}@{domain} saved (digest realm {realm})")
            })
        }
        SubscriberCommand::Rm { subscriber: who } => {
            let (user, domain) = subscriber::parse_subscriber(&who)?;
            c.subscriber_rm(user.clone(), domain.clone())
                .await
                .map_err(fail("subscriber.rm"))
                .map_err(|f| {
                    if f.code == exit::NOT_FOUND {
                        Failure::new(
                            exit::NOT_FOUND,
                            format!("Subscriber not found: {user}@{domain} (`kamrsctl subscriber list` lists the subscribers)"),
                        )
                    } else {
                        f
                    }
                })?;
            done(json_out, || format!("removed subscriber {user}@{domain}"))
        }
        SubscriberCommand::List => {
            let list = c.subscriber_list().await.map_err(fail("subscriber.list"))?;
            if json_out {
                return json(&list);
            }
            print(|out| render::subscribers(&list, out))
        }
        SubscriberCommand::Reload => {
            let n = c
                .subscriber_reload()
                .await
                .map_err(fail("subscriber.reload"))?;
            if json_out {
                return json(&n);
            }
            print(|out| {
                writeln!(
                    out,
                    "subscriber list reloaded: {n} subscriber{}",
                    if n == 1 { "" } else { "s" }
                )
            })
        }
    }
}

/// Output of a command whose result is empty: a sentence, or `null` with
/// `--json` (what the daemon answered).
fn done(json_out: bool, say: impl FnOnce() -> String) -> Result<(), Failure> {
    if json_out {
        print(|out| writeln!(out, "null"))
    } else {
        // Sentences quote AoRs and contacts the admin typed or pasted.
        print(|out| writeln!(out, "{}", escape::safe(&say())))
    }
}
