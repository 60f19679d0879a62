//! The `pktengine` command line.
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "pktengine", version, about = "Kernel-bypass packet engine (AF_XDP)")]
struct Cli {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print what this build implements and what it does not yet.
    Status,
    /// Route table tools.
    #[command(subcommand)]
    Route(RouteCommand),
}

#[derive(Subcommand, Debug)]
enum RouteCommand {
    /// Load routes in `ip route` syntax and look up addresses read from stdin, one per line.
    Lookup {
        /// Routes file: `PREFIX via GATEWAY [dev PORT] [metric N]`, `default via ...`, # comments.
        #[arg(long)]
        routes: std::path::PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match cli.command {
        Command::Status => {
            print!("{}", engine::STATUS);
            0
        }
        Command::Route(RouteCommand::Lookup { routes }) => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::BufWriter::new(std::io::stdout().lock());
            engine::l3::route_cmd::lookup(&routes, stdin, stdout, std::io::stderr())
        }
    };
    std::process::exit(code);
}
