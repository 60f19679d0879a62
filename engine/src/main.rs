//! The `pktengine` command line.
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pktengine",
    version,
    about = "Kernel-bypass packet engine (AF_XDP)"
)]
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
    /// Run the engine with a configuration file (see examples/).
    Run {
        /// The TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Check the configuration and exit without attaching anything.
        #[arg(long)]
        check: bool,
        /// Copy the kernel's main routing table into the engine at start.
        #[arg(long)]
        import_kernel_routes: bool,
        /// Follow the kernel's routing table live over rtnetlink, and pass
        /// routing-protocol traffic (BGP, OSPF, BFD, ARP/ND) to the kernel
        /// (`[routing] mirror = true`).
        #[arg(long)]
        mirror_kernel: bool,
        /// Bind AF_XDP sockets in copy mode (zero-copy is tried first otherwise).
        #[arg(long)]
        copy: bool,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Run even if the engine cannot drop its privileges (no such user,
        /// seccomp refused, ...): each failure becomes a warning.
        #[arg(long)]
        allow_privileged: bool,
    },
    /// Internal: started by `run`; removes the ctl socket once the engine is gone.
    #[command(name = "ctl-socket-custodian", hide = true)]
    CtlSocketCustodian {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
    },
    /// Internal: started by `run`; adds and removes the kernel routes of the
    /// announced VIPs (`[routing] announce_table`).
    #[command(name = "vip-announcer", hide = true)]
    VipAnnouncer {
        #[arg(long)]
        table: u32,
        #[arg(long)]
        vip: Vec<std::net::Ipv4Addr>,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
    },
    /// Talk to a running engine.
    Ctl {
        /// The engine's control socket.
        #[arg(long, default_value = "/run/pktengine/ctl.sock")]
        socket: PathBuf,
        /// One JSON document on stdout instead of text (schemas: docs/JSON.md).
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        cmd: CtlCommand,
    },
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: engine::control::manual::Shell,
    },
    /// Write the manual pages (pktengine.1 and one per subcommand) into DIR,
    /// or print pktengine.1 without DIR.
    Man { dir: Option<PathBuf> },
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// Per-port packets, bytes and rates; drops by stage and reason; workers.
    Stats {
        /// Refresh every second, like top.
        #[arg(long)]
        watch: bool,
    },
    /// Routes: add | del | show.
    Route {
        #[command(subcommand)]
        cmd: CtlRoute,
    },
    /// The MAC table of the bridge domains.
    Mac {
        #[command(subcommand)]
        cmd: CtlShowFlush,
    },
    /// The neighbor (ARP and ND) table.
    Arp {
        #[command(subcommand)]
        cmd: CtlShow,
    },
    /// NAT sessions (`show`: state and age of each; `flush`: remove the dynamic ones).
    Nat {
        #[command(subcommand)]
        cmd: CtlShowFlush,
    },
    /// The engine's TCP connections (`show`: state, bytes, RTT, cwnd of each).
    Tcp {
        #[command(subcommand)]
        cmd: CtlShow,
    },
    /// Tracked connections (`show [ADDR] [port N] [tcp|udp|icmp|icmpv6]`, as `conntrack -L`).
    Conn {
        #[command(subcommand)]
        cmd: CtlConn,
    },
    /// Load-balancer services: `show`, `backend set|add|del`.
    Lb {
        #[command(subcommand)]
        cmd: CtlLb,
    },
    /// Copy frames seen on a port (received and sent) into a pcap file.
    Capture {
        /// Port name (or its interface).
        port: String,
        /// Frames to copy (that the filter accepts).
        #[arg(long, default_value_t = 100)]
        count: u32,
        /// Only frames this tcpdump expression accepts, e.g. 'tcp port 80 and host 198.18.1.2'
        /// (compiled here by libpcap; the engine runs the program on the frames).
        #[arg(long)]
        filter: Option<String>,
        /// The pcap file to write.
        #[arg(long, short = 'w')]
        out: PathBuf,
    },
    /// Per-packet trace: `on`, `off`, or show the last traced packets.
    Trace { state: Option<String> },
    /// Re-read the configuration file (like SIGHUP); a bad file changes nothing.
    Reload,
    /// Packet filter rules: add | del | show.
    Filter {
        #[command(subcommand)]
        cmd: CtlFilter,
    },
}

#[derive(Subcommand, Debug)]
enum CtlFilter {
    /// nftables-like: `iif lan ip saddr 198.18.2.0/24 tcp flags syn / syn,ack drop`.
    Add {
        /// Insert at this position (default: append).
        #[arg(long)]
        at: Option<usize>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rule: Vec<String>,
    },
    /// Delete the rule numbered N in `filter show`.
    Del { index: usize },
    /// Rules in order with their hit counters.
    Show,
}

#[derive(Subcommand, Debug)]
enum CtlRoute {
    /// `ip route` syntax: PREFIX via GW [dev PORT] [metric N].
    Add {
        route: Vec<String>,
    },
    /// PREFIX [metric N].
    Del {
        route: Vec<String>,
    },
    Show,
}

#[derive(Subcommand, Debug)]
enum CtlShow {
    Show,
}

#[derive(Subcommand, Debug)]
enum CtlConn {
    /// Every tracked connection matching all the words: an address, `port N`, a protocol.
    Show {
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CtlLb {
    /// Services and their backends with connection counts and bytes.
    Show,
    /// Change a service's pool.
    Backend {
        #[command(subcommand)]
        cmd: CtlLbBackend,
    },
}

#[derive(Subcommand, Debug)]
enum CtlLbBackend {
    /// `set SERVICE ADDR:PORT up|down`: a down backend gets no new connections.
    Set {
        service: String,
        backend: String,
        state: String,
    },
    /// `add SERVICE ADDR:PORT [weight N]`.
    Add {
        service: String,
        backend: String,
        #[arg(trailing_var_arg = true)]
        rest: Vec<String>,
    },
    /// `del SERVICE ADDR:PORT`.
    Del { service: String, backend: String },
}

#[derive(Subcommand, Debug)]
enum CtlShowFlush {
    Show,
    Flush,
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
    engine::runtime::log::init(level);
    let code = match cli.command {
        Command::Completions { shell } => {
            use std::io::Write;
            let script = engine::control::manual::completions(&Cli::command(), shell);
            i32::from(std::io::stdout().write_all(&script).is_err())
        }
        Command::Man { dir } => {
            let r = match dir {
                Some(dir) => engine::control::manual::man_pages(Cli::command(), &dir).map(|_| ()),
                None => engine::control::manual::man_page(Cli::command(), &mut std::io::stdout()),
            };
            match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("pktengine man: {e}");
                    1
                }
            }
        }
        Command::Status => {
            print!("{}", engine::STATUS);
            0
        }
        Command::Route(RouteCommand::Lookup { routes }) => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::BufWriter::new(std::io::stdout().lock());
            engine::l3::route_cmd::lookup(&routes, stdin, stdout, std::io::stderr())
        }
        Command::CtlSocketCustodian { socket, uid, gid } => {
            use engine::runtime::privileges::{custodian, Account};
            let account = uid.zip(gid).map(|(uid, gid)| Account { uid, gid });
            custodian::main(&socket, account)
        }
        Command::VipAnnouncer {
            table,
            vip,
            uid,
            gid,
        } => {
            use engine::runtime::privileges::Account;
            let account = uid.zip(gid).map(|(uid, gid)| Account { uid, gid });
            engine::runtime::announce::main(table, &vip, account)
        }
        Command::Run {
            config,
            check,
            import_kernel_routes,
            mirror_kernel,
            copy,
            duration,
            allow_privileged,
        } => match engine::control::config::Config::load(&config) {
            Err(errors) => {
                engine::runtime::log::fatal(&format!(
                    "{errors}\npktengine: configuration refused, nothing was attached"
                ));
                2
            }
            Ok(_) if check => {
                println!("{}: configuration is valid", config.display());
                0
            }
            Ok(mut cfg) => {
                if mirror_kernel {
                    cfg.routing.mirror = true;
                    if cfg.routing.kernel_control.is_none() {
                        cfg.routing.kernel_control =
                            Some(engine::control::config::KernelControl::defaults());
                    }
                }
                let opts = engine::runtime::RunOptions {
                    import_kernel_routes,
                    duration: duration.map(std::time::Duration::from_secs_f64),
                    copy_mode: copy,
                    config_path: Some(config.clone()),
                    allow_privileged,
                };
                match engine::runtime::run(cfg, opts) {
                    Ok(()) => 0,
                    Err(e) => {
                        engine::runtime::log::fatal(&format!("pktengine: {e}"));
                        1
                    }
                }
            }
        },
        Command::Ctl { socket, json, cmd } => {
            use engine::control::cli;
            use engine::control::ctl::Request;
            let fmt = if json {
                engine::control::records::Format::Json
            } else {
                engine::control::records::Format::Text
            };
            let mut out = std::io::stdout().lock();
            match cmd {
                CtlCommand::Stats { watch } => cli::stats(&socket, watch, fmt, &mut out),
                CtlCommand::Route {
                    cmd: CtlRoute::Add { route },
                } => cli::run(
                    &socket,
                    fmt,
                    Request::RouteAdd {
                        route: route.join(" "),
                    },
                    &mut out,
                ),
                CtlCommand::Route {
                    cmd: CtlRoute::Del { route },
                } => cli::run(
                    &socket,
                    fmt,
                    Request::RouteDel {
                        route: route.join(" "),
                    },
                    &mut out,
                ),
                CtlCommand::Route {
                    cmd: CtlRoute::Show,
                } => cli::run(&socket, fmt, Request::RouteShow, &mut out),
                CtlCommand::Mac {
                    cmd: CtlShowFlush::Show,
                } => cli::run(&socket, fmt, Request::MacShow, &mut out),
                CtlCommand::Mac {
                    cmd: CtlShowFlush::Flush,
                } => cli::run(&socket, fmt, Request::MacFlush, &mut out),
                CtlCommand::Arp { cmd: CtlShow::Show } => {
                    cli::run(&socket, fmt, Request::ArpShow, &mut out)
                }
                CtlCommand::Nat {
                    cmd: CtlShowFlush::Show,
                } => cli::run(&socket, fmt, Request::NatShow, &mut out),
                CtlCommand::Tcp { cmd: CtlShow::Show } => {
                    cli::run(&socket, fmt, Request::TcpShow, &mut out)
                }
                CtlCommand::Conn {
                    cmd: CtlConn::Show { filter },
                } => cli::run(
                    &socket,
                    fmt,
                    Request::ConnShow {
                        filter: filter.join(" "),
                    },
                    &mut out,
                ),
                CtlCommand::Nat {
                    cmd: CtlShowFlush::Flush,
                } => cli::run(&socket, fmt, Request::NatFlush, &mut out),
                CtlCommand::Lb { cmd: CtlLb::Show } => {
                    cli::run(&socket, fmt, Request::LbShow, &mut out)
                }
                CtlCommand::Lb {
                    cmd: CtlLb::Backend { cmd },
                } => {
                    let (service, backend, action, weight) = match cmd {
                        CtlLbBackend::Set {
                            service,
                            backend,
                            state,
                        } => (service, backend, state, None),
                        CtlLbBackend::Del { service, backend } => {
                            (service, backend, "del".to_string(), None)
                        }
                        CtlLbBackend::Add {
                            service,
                            backend,
                            rest,
                        } => {
                            let weight = match rest.as_slice() {
                                [] => None,
                                [w, n] if w == "weight" => match n.parse::<u32>() {
                                    Ok(n) => Some(n),
                                    Err(_) => {
                                        eprintln!("pktengine ctl lb backend add: weight `{n}` is not a number");
                                        std::process::exit(2);
                                    }
                                },
                                other => {
                                    eprintln!("pktengine ctl lb backend add: expected `weight N`, got {other:?}");
                                    std::process::exit(2);
                                }
                            };
                            (service, backend, "add".to_string(), weight)
                        }
                    };
                    cli::run(
                        &socket,
                        fmt,
                        Request::LbBackend {
                            service,
                            backend,
                            action,
                            weight,
                        },
                        &mut out,
                    )
                }
                CtlCommand::Capture {
                    port,
                    count,
                    filter,
                    out: file,
                } => cli::capture(
                    &socket,
                    &port,
                    count,
                    filter.as_deref(),
                    &file,
                    fmt,
                    &mut out,
                ),
                CtlCommand::Filter {
                    cmd: CtlFilter::Add { at, rule },
                } => cli::run(
                    &socket,
                    fmt,
                    Request::FilterAdd {
                        rule: rule.join(" "),
                        at,
                    },
                    &mut out,
                ),
                CtlCommand::Filter {
                    cmd: CtlFilter::Del { index },
                } => cli::run(&socket, fmt, Request::FilterDel { index }, &mut out),
                CtlCommand::Reload => cli::run(&socket, fmt, Request::Reload, &mut out),
                CtlCommand::Filter {
                    cmd: CtlFilter::Show,
                } => cli::run(&socket, fmt, Request::FilterShow, &mut out),
                CtlCommand::Trace { state } => {
                    let set = match state.as_deref() {
                        None | Some("show") => None,
                        Some("on") => Some(true),
                        Some("off") => Some(false),
                        Some(x) => {
                            eprintln!("pktengine ctl trace: `{x}` is not on, off or show");
                            std::process::exit(2);
                        }
                    };
                    cli::run(&socket, fmt, Request::Trace { set }, &mut out)
                }
            }
        }
    };
    std::process::exit(code);
}
