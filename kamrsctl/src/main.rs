//! `kamrsctl`: the command-line client of the kamrs control API, in the
//! spirit of Kamailio's `kamcmd`: `kamrsctl ul.dump`, `kamrsctl ul.lookup
//! AOR`, `kamrsctl ul.rm AOR`, rendered as tables or, with `--json`, as the
//! raw JSON-RPC result for scripts.
//!
//! The control API itself is not served yet; until it is, this binary only
//! knows its own version and where it will look for the daemon.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "kamrsctl", version = common::VERSION, about = "Control client for the kamrs SIP registrar")]
struct Cli {
    /// Control endpoint of the daemon: unix:/path or http://host:port.
    #[arg(long, default_value_t = format!("unix:{}", common::DEFAULT_CTL_SOCKET))]
    ctl: String,
}

fn main() {
    let cli = Cli::parse();
    eprintln!(
        "kamrsctl: no commands are available yet in this version: the control API (ul.dump, ul.lookup, …) is not implemented; control endpoint would be {}",
        cli.ctl
    );
    std::process::exit(2);
}
