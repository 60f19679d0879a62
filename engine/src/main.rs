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
    };
    std::process::exit(code);
}
