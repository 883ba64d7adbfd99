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
mod subscriber_file;
mod values;
mod watch;

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
    /// Without it, unix:/run/kamrs/kamrs.sock, then the per-user socket
    /// $XDG_RUNTIME_DIR/kamrs/kamrs.sock (where kamrs puts its socket when
    /// it cannot create the default one).
    #[arg(long, global = true, env = "KAMRSCTL_CTL", value_name = "ENDPOINT")]
    ctl: Option<Endpoint>,

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

    /// How to print tables.
    #[arg(long, global = true, value_enum, default_value_t = render::Layout::Auto)]
    layout: render::Layout,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every registered AoR and its contacts.
    #[command(
        name = "ul.dump",
        override_usage = "kamrsctl ul.dump [brief] [--brief]"
    )]
    UlDump {
        /// Only the AoR names.
        #[arg(long)]
        brief: bool,
        /// `brief`: only the AoR names (Kamailio's `ul.dump brief`).
        #[arg(value_name = "brief", value_parser = ["brief"], hide_possible_values = true)]
        brief_word: Option<String>,
    },
    /// The contacts of one AoR.
    #[command(
        name = "ul.lookup",
        override_usage = "kamrsctl ul.lookup [location] <AOR>"
    )]
    UlLookup {
        /// The AoR: `alice`, or `alice@example.com` with use_domain =
        /// true (a `sip:` prefix, and the domain without use_domain, are
        /// dropped as the registrar drops them). Kamailio's form,
        /// `location AOR`, works too.
        #[arg(value_name = "AOR")]
        aor: String,
        /// The AoR when the first argument is the table (`location`).
        #[arg(hide = true)]
        kamailio_aor: Option<String>,
    },
    /// Watch registrations live: one line per binding registered,
    /// refreshed, replaced, unregistered, expired or removed (all AoRs, or
    /// one). `--json`: one JSON object per line. Ends with Ctrl-C, after
    /// `--count` events, or (exit 4) when kamrs cuts off a watch that
    /// falls behind.
    #[command(
        name = "ul.watch",
        override_usage = "kamrsctl ul.watch [AOR] [--count N]"
    )]
    UlWatch {
        /// Only this AoR (as for ul.lookup).
        #[arg(value_name = "AOR")]
        aor: Option<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Remove an AoR and all its contacts.
    #[command(name = "ul.rm", override_usage = "kamrsctl ul.rm [location] <AOR>")]
    UlRm {
        /// The AoR: `alice`, or `alice@example.com` with use_domain =
        /// true (a `sip:` prefix, and the domain without use_domain, are
        /// dropped as the registrar drops them). Kamailio's form,
        /// `location AOR`, works too.
        #[arg(value_name = "AOR")]
        aor: String,
        /// The AoR when the first argument is the table (`location`).
        #[arg(hide = true)]
        kamailio_aor: Option<String>,
    },
    /// Remove one contact of an AoR.
    #[command(
        name = "ul.rm_contact",
        override_usage = "kamrsctl ul.rm_contact [location] <AOR> <CONTACT>"
    )]
    UlRmContact {
        /// The AoR, as for `ul.lookup`. Kamailio's form, `location AOR
        /// CONTACT`, works too.
        #[arg(value_name = "AOR")]
        aor: String,
        /// The contact's URI as `ul.lookup AOR` shows it, e.g.
        /// 'sip:alice@192.0.2.10:5060;transport=udp' (quoted for the
        /// shell's `;`). It must equal a stored Contact byte for byte, or
        /// by RFC 3261 URI comparison (scheme and host in any case,
        /// %-escapes or not, parameters in any order).
        #[arg(value_name = "CONTACT")]
        contact: String,
        /// The contact when the first argument is the table (`location`).
        #[arg(hide = true)]
        kamailio_contact: Option<String>,
    },
    /// Add (or replace) a contact of an AoR.
    #[command(
        name = "ul.add",
        override_usage = "kamrsctl ul.add [location] <AOR> <CONTACT> [OPTIONS]"
    )]
    UlAdd {
        /// The AoR: `alice`, or `alice@example.com` with use_domain = true.
        /// A leading `location` (Kamailio's table) is accepted; the rest
        /// of Kamailio's positional arguments are the options below (or
        /// `kamrsctl call ul.add location AOR CONTACT EXPIRES Q PATH FLAGS
        /// CFLAGS METHODS`).
        aor: String,
        /// SIP URI of the contact, e.g. sip:alice@192.0.2.10:5060.
        contact: String,
        /// The contact when the first argument is the table (`location`).
        #[arg(hide = true)]
        kamailio_contact: Option<String>,
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
    #[command(alias = "stats.get_statistics")]
    Stats {
        /// `all` (the default), a group with its colon (`usrloc:`), or a
        /// statistic's full name (`usrloc:registered_users`); several may
        /// be given. `kamrsctl stats` lists every name.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Zero counters: all, a group (`registrar:`), or names.
    #[command(name = "stats.reset", alias = "stats.reset_statistics")]
    StatsReset {
        /// `all`, a group with its colon (`registrar:`), or a statistic's
        /// full name; gauges keep their value.
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Call any control API method (`system.listMethods` lists them) and
    /// print its JSON result, like `kamcmd METHOD ARGS…`.
    #[command(alias = "rpc")]
    Call {
        /// The method's name, e.g. `ul.lookup` or `stats.get_statistics`.
        method: String,
        /// Its positional arguments, in Kamailio's order. Each is sent as
        /// JSON when it reads as JSON (`3600`, `-1`, `true`, `null`,
        /// `["a"]`), else as a string (`location`, `alice`, `sip:…`); quote
        /// it as JSON to send a number as a string (`'"1001"'`).
        #[arg(value_name = "ARG", allow_negative_numbers = true)]
        args: Vec<String>,
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
    /// "digest"`; with authentication off, prepares the `[auth]
    /// subscribers` file for when it is on).
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
    /// Open TLS connections (`tls:` and `wss:` listeners), oldest first.
    #[command(name = "tls.list")]
    TlsList,
    /// The certificate in force (its SHA-256 fingerprint), TLS connection
    /// and handshake counts.
    #[command(name = "tls.info")]
    TlsInfo,
    /// Re-read `[tls] certificate` and `private_key`: new connections get
    /// the new certificate; a file that cannot be used is refused and the
    /// old certificate stays. Same as SIGHUP.
    #[command(name = "tls.reload")]
    TlsReload,
    /// Print a shell completion script: `kamrsctl completions bash > …`.
    Completions {
        /// The shell to write the script for.
        shell: Shell,
    },
    /// Print the manual page (roff): `kamrsctl man > kamrsctl.8`; with
    /// --dir, write it and one page per command (`kamrsctl-ul.dump.8`, …)
    /// into DIR.
    #[command(hide = true)]
    Man {
        /// Write the pages into this directory instead of stdout.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum SubscriberCommand {
    /// Add a subscriber, or set a new password for one. The password is
    /// asked for (twice, not echoed), or read from the first line of stdin
    /// with --password-stdin; never from the command line. Only its HA1
    /// hashes reach kamrs.
    Add {
        /// The subscriber's user and domain as in the phones' To URI
        /// (`alice@example.com`).
        #[arg(value_name = "USER@DOMAIN")]
        subscriber: String,
        /// Read the password from the first line of stdin (for scripts).
        #[arg(long)]
        password_stdin: bool,
        /// Edit this subscriber file (kamrs's `[auth] subscribers`)
        /// directly, without a running kamrs; needs --realm.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        /// With --file: the digest realm kamrs will challenge with, its
        /// `[auth] realm`, or the domain when that is not set.
        #[arg(long, value_name = "REALM", requires = "file")]
        realm: Option<String>,
        /// With --file: kamrs's config sets `use_domain = true`, so
        /// subscribers of several domains are allowed.
        #[arg(long, requires = "file")]
        use_domain: bool,
    },
    /// Remove a subscriber.
    Rm {
        /// The subscriber, as `subscriber list` shows it
        /// (`alice@example.com`).
        #[arg(value_name = "USER@DOMAIN")]
        subscriber: String,
        /// Edit this subscriber file directly, without a running kamrs.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
    },
    /// List the subscribers (names only: hashes never leave kamrs).
    List {
        /// Read this subscriber file directly, without a running kamrs.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
    },
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
    if let Command::Man { dir } = &cli.command {
        // docs/man/kamrsctl*.8 are this output (checked by the end-to-end
        // tests).
        return match man_pages(dir.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => {
                eprintln!("kamrsctl: {f}");
                ExitCode::from(f.code)
            }
        };
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

/// `kamrsctl man`: the manual page on stdout, or with `dir` every page
/// (this one and one per visible command, `kamrsctl-ul.dump.8`, …) written
/// there, section 8.
fn man_pages(dir: Option<&std::path::Path>) -> Result<(), Failure> {
    fn walk(cmd: &clap::Command, pages: &mut Vec<clap_mangen::Man>) {
        pages.push(clap_mangen::Man::new(cmd.clone()).section("8"));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, pages);
        }
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, &mut pages);
    let Some(dir) = dir else {
        return print(|out| pages[0].render(out));
    };
    for page in &pages {
        page.generate_to(dir).map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!(
                    "cannot write {}: {e}",
                    dir.join(page.get_filename()).display()
                ),
            )
        })?;
    }
    Ok(())
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
    if let Command::Subscriber(cmd) = &cli.command {
        if let Some(done) = subscriber_file_command(cmd, cli.json, cli.layout) {
            return done;
        }
    }
    let target = Target::new(
        cli.ctl.clone(),
        cli.token.clone().filter(|t| !t.is_empty()),
        Duration::from_secs(cli.timeout.max(1)),
    );
    let c = client::connect(&target).await?;
    let table = TABLE.to_owned();
    let fail = |m: &'static str| move |e: ClientError| client::cli_failure(m, e);
    let style = render::Style::detect(cli.layout);
    let mut printer = render::Printer::new(style);
    match cli.command {
        Command::UlDump { brief, brief_word } => {
            dump::run(&c, brief || brief_word.is_some(), cli.json, style).await
        }
        Command::UlLookup { aor, kamailio_aor } => {
            let [aor] = after_table("ul.lookup", [aor], kamailio_aor, "[location] AOR")?;
            let l = c
                .ul_lookup(table, aor.clone())
                .await
                .map_err(fail("ul.lookup"))
                .map_err(|f| not_found_hint(f, &aor, None))?;
            if cli.json {
                return json(&l);
            }
            print(|out| render::lookup(&l, &mut printer, out))
        }
        Command::UlWatch { aor, count } => watch::run(&c, aor, count, cli.json).await,
        Command::UlRm { aor, kamailio_aor } => {
            let [aor] = after_table("ul.rm", [aor], kamailio_aor, "[location] AOR")?;
            c.ul_rm(table, aor.clone())
                .await
                .map_err(fail("ul.rm"))
                .map_err(|f| not_found_hint(f, &aor, None))?;
            done(cli.json, || format!("removed AoR {aor}"))
        }
        Command::UlRmContact {
            aor,
            contact,
            kamailio_contact,
        } => {
            let [aor, contact] = after_table(
                "ul.rm_contact",
                [aor, contact],
                kamailio_contact,
                "[location] AOR CONTACT",
            )?;
            c.ul_rm_contact(table, aor.clone(), contact.clone())
                .await
                .map_err(fail("ul.rm_contact"))
                .map_err(|f| not_found_hint(f, &aor, Some(&contact)))?;
            done(cli.json, || format!("removed {contact} from {aor}"))
        }
        Command::UlAdd {
            aor,
            contact,
            kamailio_contact,
            expires,
            q,
            path,
            flags,
            cflags,
            methods,
        } => {
            let [aor, contact] = after_table(
                "ul.add",
                [aor, contact],
                kamailio_contact,
                "[location] AOR CONTACT [--expires N] [--q Q] …",
            )?;
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
            if cli.json {
                return done(true, String::new);
            }
            // Which store, to say what happened: Kamailio's ul.flush
            // answers nothing either way.
            let info = c.core_info().await.map_err(fail("core.info"))?;
            done(false, || {
                if info.store == "none" {
                    "nothing to flush: kamrs keeps the location table in memory only ([store] backend = \"none\"); set a [store] backend to keep it across restarts".to_owned()
                } else {
                    format!(
                        "flushed: every change is written to the {} store",
                        info.store
                    )
                }
            })
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
                let object = render::stats_object(&lines);
                return print(|out| render::pretty_json(&object, out));
            }
            print(|out| render::stats(&lines, &mut printer, out))
        }
        Command::StatsReset { names } => {
            c.reset_statistics(names)
                .await
                .map_err(fail("stats.reset_statistics"))?;
            done(cli.json, || "counters reset".to_owned())
        }
        Command::Call { method, args } => call(&c, &method, &args).await,
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
        Command::Subscriber(cmd) => subscriber_command(&c, cmd, cli.json, &mut printer).await,
        Command::PikeTop { n } => {
            let top = c.pike_top(Some(n)).await.map_err(fail("pike.top"))?;
            if cli.json {
                return json(&top);
            }
            print(|out| render::pike_top(&top, &mut printer, out))
        }
        Command::TlsList => {
            let list = c.tls_list().await.map_err(fail("tls.list"))?;
            if cli.json {
                return json(&list);
            }
            print(|out| render::tls_list(&list, &mut printer, out))
        }
        Command::TlsInfo => {
            let info = c.tls_info().await.map_err(fail("tls.info"))?;
            if cli.json {
                return json(&info);
            }
            print(|out| render::tls_info(&info, out))
        }
        Command::TlsReload => {
            let said = c.tls_reload().await.map_err(fail("tls.reload"))?;
            if cli.json {
                return json(&said);
            }
            print(|out| writeln!(out, "{}", escape::safe(&said)))
        }
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

/// The arguments of a `ul.*` command, with or without Kamailio's table
/// argument in front: `ul.lookup alice` and `ul.lookup location alice`
/// both give `[alice]`. `words` are the arguments as clap read them,
/// `extra` the one after them: given, the first word must be the table.
fn after_table<const N: usize>(
    command: &str,
    words: [String; N],
    extra: Option<String>,
    usage: &str,
) -> Result<[String; N], Failure> {
    let Some(last) = extra else {
        return Ok(words);
    };
    let [table, rest @ ..] = words.as_slice() else {
        return Ok(words);
    };
    if table != TABLE {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "{command}: `{table}` is not a table: kamrs has one, `{TABLE}`, which may be left out (usage: kamrsctl {command} {usage})"
            ),
        ));
    }
    let mut shifted: Vec<String> = rest.to_vec();
    shifted.push(last);
    // N words again: one dropped in front, one added at the end.
    <[String; N]>::try_from(shifted)
        .map_err(|_| Failure::new(exit::FAILED, format!("{command}: internal argument error")))
}

/// One `kamrsctl call` argument as a JSON value: itself when it reads as
/// JSON (`3600`, `-1`, `true`, `null`, `["a"]`, `"quoted"`), else the
/// string (`location`, `alice`, `sip:alice@192.0.2.1`, `+15551234567`).
fn call_arg(arg: &str) -> serde_json::Value {
    serde_json::from_str(arg).unwrap_or_else(|_| serde_json::Value::String(arg.to_owned()))
}

/// `kamrsctl call METHOD ARGS…`: any method, its result as JSON.
async fn call(
    c: &jsonrpsee_ws_client::WsClient,
    method: &str,
    args: &[String],
) -> Result<(), Failure> {
    use common::api::{ArrayParams, ClientT};
    let mut params = ArrayParams::new();
    for arg in args {
        params
            .insert(call_arg(arg))
            .map_err(|e| Failure::new(exit::USAGE, format!("call: argument {arg:?}: {e}")))?;
    }
    let result: Box<serde_json::value::RawValue> =
        c.request(method, params).await.map_err(|e| match e {
            ClientError::Call(obj) if obj.code() == -32601 => Failure::new(
                exit::USAGE,
                format!("call: kamrs has no method `{method}` (`kamrsctl system.listMethods` lists them)"),
            ),
            e => client::call_failure(method, e),
        })?;
    print(|out| render::pretty_json(result.get(), out))
}

/// `kamrsctl subscriber add|rm|list|reload`.
async fn subscriber_command(
    c: &impl CtlClient,
    cmd: SubscriberCommand,
    json_out: bool,
    printer: &mut render::Printer,
) -> Result<(), Failure> {
    let fail = |m: &'static str| move |e: ClientError| client::cli_failure(m, e);
    match cmd {
        SubscriberCommand::Add {
            subscriber: who,
            password_stdin,
            ..
        } => {
            let (user, domain) = subscriber::parse_subscriber(&who)?;
            // The realm first: if the subscriber file cannot be managed or
            // kamrs is not there, nobody types a password for nothing.
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
            // Saved while authentication is off: say when it
            // counts. A daemon too old for core.info just gets no note.
            let auth_off = !json_out
                && c.core_info()
                    .await
                    .is_ok_and(|i| i.auth.eq_ignore_ascii_case("none"));
            done(json_out, || {
                let mut say = format!("subscriber {user}@{domain} saved (digest realm {realm})");
                if auth_off {
                    say.push_str("; authentication is off, so it is used once kamrs runs with `[auth] mode = \"digest\"`");
                }
                say
            })
        }
        SubscriberCommand::Rm {
            subscriber: who, ..
        } => {
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
        SubscriberCommand::List { .. } => {
            let list = c.subscriber_list().await.map_err(fail("subscriber.list"))?;
            if json_out {
                return json(&list);
            }
            print(|out| render::subscribers(&list, printer, out))
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

/// `kamrsctl subscriber add|rm|list --file PATH`: the file edited here,
/// no daemon; `None` without `--file`.
fn subscriber_file_command(
    cmd: &SubscriberCommand,
    json_out: bool,
    layout: render::Layout,
) -> Option<Result<(), Failure>> {
    Some(match cmd {
        SubscriberCommand::Add {
            subscriber: who,
            password_stdin,
            file: Some(path),
            realm,
            use_domain,
        } => file_add(
            who,
            *password_stdin,
            path,
            realm.as_deref(),
            *use_domain,
            json_out,
        ),
        SubscriberCommand::Rm {
            subscriber: who,
            file: Some(path),
        } => file_rm(who, path, json_out),
        SubscriberCommand::List { file: Some(path) } => {
            subscriber_file::list(path).and_then(|list| {
                if json_out {
                    return json(&list);
                }
                let mut printer = render::Printer::new(render::Style::detect(layout));
                print(|out| render::subscribers(&list, &mut printer, out))
            })
        }
        _ => return None,
    })
}

/// `subscriber add USER@DOMAIN --file PATH --realm REALM [--use-domain]`.
fn file_add(
    who: &str,
    password_stdin: bool,
    path: &std::path::Path,
    realm: Option<&str>,
    use_domain: bool,
    json_out: bool,
) -> Result<(), Failure> {
    let (user, domain) = subscriber::parse_subscriber(who)?;
    let domain = subscriber_file::checked(&user, &domain)?;
    let Some(realm) = realm.filter(|r| !r.is_empty()) else {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "--file needs --realm: the digest realm kamrs will challenge with, which is `[auth] realm` in kamrs's config, or the domain when that is not set (then --realm {domain}); nothing was changed"
            ),
        ));
    };
    // Read before the password, so a broken file costs no typing.
    subscriber_file::load(path)?;
    let password = if password_stdin {
        subscriber::password_from(io::stdin().lock())?
    } else {
        subscriber::password_from_prompt(&format!("{user}@{domain}"))?
    };
    let (ha1, ha1_sha256) = subscriber::ha1s(&user, realm, &password);
    drop(password);
    let entry = subscriber_file::Entry {
        username: user.clone(),
        domain: domain.clone(),
        ha1: Some(ha1),
        ha1_sha256: Some(ha1_sha256),
    };
    subscriber_file::add(path, use_domain, entry)?;
    done(json_out, || {
        format!(
            "subscriber {user}@{domain} saved in {} (digest realm {realm}); a running kamrs reads it on `kamrsctl subscriber reload` or SIGHUP",
            path.display()
        )
    })
}

/// `subscriber rm USER@DOMAIN --file PATH`.
fn file_rm(who: &str, path: &std::path::Path, json_out: bool) -> Result<(), Failure> {
    let (user, domain) = subscriber::parse_subscriber(who)?;
    if !subscriber_file::remove(path, &user, &domain)? {
        return Err(Failure::new(
            exit::NOT_FOUND,
            format!(
                "Subscriber not found: {user}@{domain} in {} (`kamrsctl subscriber list --file {}` lists them)",
                path.display(),
                path.display()
            ),
        ));
    }
    done(json_out, || {
        format!(
            "removed subscriber {user}@{domain} from {}; a running kamrs reads it on `kamrsctl subscriber reload` or SIGHUP",
            path.display()
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words<const N: usize>(w: [&str; N]) -> [String; N] {
        w.map(str::to_owned)
    }

    #[test]
    fn kamailios_table_argument_may_come_first() {
        let one = |w: [&str; 1], extra: Option<&str>| {
            after_table(
                "ul.lookup",
                words(w),
                extra.map(str::to_owned),
                "[location] AOR",
            )
        };
        assert_eq!(one(["alice"], None).unwrap(), ["alice"]);
        assert_eq!(one(["location"], Some("alice")).unwrap(), ["alice"]);
        // An AoR named like the table, alone, is an AoR.
        assert_eq!(one(["location"], None).unwrap(), ["location"]);
        let e = one(["locaton"], Some("alice")).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("`locaton` is not a table"), "{e}");
        let two = after_table(
            "ul.rm_contact",
            words(["location", "alice"]),
            Some("sip:a@h".to_owned()),
            "[location] AOR CONTACT",
        );
        assert_eq!(two.unwrap(), ["alice", "sip:a@h"]);
    }

    #[test]
    fn call_arguments_are_json_when_they_read_as_json() {
        use serde_json::json;
        assert_eq!(call_arg("location"), json!("location"));
        assert_eq!(call_arg("3600"), json!(3600));
        assert_eq!(call_arg("-1"), json!(-1));
        assert_eq!(call_arg("0.5"), json!(0.5));
        assert_eq!(call_arg("true"), json!(true));
        assert_eq!(call_arg("null"), json!(null));
        assert_eq!(call_arg("[\"a\",1]"), json!(["a", 1]));
        assert_eq!(call_arg("\"1001\""), json!("1001"));
        for s in [
            "sip:alice@192.0.2.1;transport=tcp",
            "+15551234567",
            "",
            "[x",
        ] {
            assert_eq!(call_arg(s), json!(s), "{s}");
        }
    }

    #[test]
    fn the_command_line_parses_kamailios_forms() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("kamrsctl").chain(args.iter().copied()))
        };
        for ok in [
            &["ul.lookup", "location", "alice"][..],
            &["ul.dump", "brief"],
            &["ul.rm", "location", "alice"],
            &["ul.rm_contact", "location", "alice", "sip:a@h"],
            &["ul.add", "location", "alice", "sip:a@h", "--expires", "60"],
            &["stats.get_statistics", "all"],
            &["stats.get_statistics", "usrloc:", "core:rcv_requests"],
            &[
                "call", "ul.add", "location", "a", "sip:a@h", "0", "-1", "0", "0", "0", "0",
            ],
            &["rpc", "system.listMethods"],
            &["--layout", "vertical", "ul.dump"],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}: {:?}", parse(ok).err());
        }
        for bad in [
            &["ul.lookup", "location", "alice", "more"][..],
            &["ul.dump", "full"],
            &["--layout", "sideways", "ul.dump"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
