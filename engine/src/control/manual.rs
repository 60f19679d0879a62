//! Shell completions and manual pages, generated from the command line's
//! own definition (clap), so they cannot drift from it:
//! `pktengine completions bash|zsh|fish` and `pktengine man [DIR]`.
//! `scripts/package.sh` writes both into the Debian package.

use std::io::{self, Write};
use std::path::Path;

pub use clap_complete::Shell;

/// The program's name, as installed.
const NAME: &str = "pktengine";

/// The completion script for `shell` (bash, zsh, fish, ...) of the
/// `pktengine` command `cmd`. Made in memory: clap_complete panics when its
/// writer fails (`| head`).
pub fn completions(cmd: &clap::Command, shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut visible(cmd), NAME, &mut out);
    out
}

/// `cmd` without its hidden top-level subcommands (the socket custodian),
/// which clap_complete would offer: clap cannot remove a subcommand, so the
/// top level is built anew around the visible ones.
fn visible(cmd: &clap::Command) -> clap::Command {
    let mut top = clap::Command::new(NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        top = top.about(about.clone());
    }
    top
}

/// The main page (`pktengine.1`) to `out`.
pub fn man_page(cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(prepared(cmd)).render(out)
}

/// Every page into `dir`: the main one and one per subcommand at every
/// depth (`pktengine-ctl.1`, `pktengine-ctl-route.1`, ...), hidden ones
/// left out: a page lists its subcommands as `pktengine-ctl-route(1)`, so
/// each of those names a page that exists. Returns the files written.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(prepared(cmd), dir, &mut written)?;
    written.sort();
    Ok(written)
}

/// Without the `help` subcommand (its page would only say "print help"),
/// built so that subcommands carry their full names (`pktengine-ctl`).
fn prepared(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn write_pages(
    cmd: clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> io::Result<()> {
    let parent = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    for mut sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        if sub.get_about().is_none() {
            // The NAME line (whatis, apropos) needs a description: `show`, `flush`.
            let about = format!(
                "{} {}, see {parent}(1)",
                parent.replace('-', " "),
                sub.get_name()
            );
            sub = sub.about(about);
        }
        write_pages(sub, dir, written)?;
    }
    written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("pktengine")
            .version("0.1.0")
            .about("Kernel-bypass packet engine (AF_XDP)")
            .subcommand(
                clap::Command::new("run")
                    .about("Run the engine")
                    .arg(clap::Arg::new("config").long("config")),
            )
            .subcommand(
                clap::Command::new("ctl")
                    .about("Talk to a running engine")
                    .subcommand(clap::Command::new("stats").about("Counters"))
                    .subcommand(clap::Command::new("route").subcommand(clap::Command::new("show"))),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn a_page_per_visible_subcommand_at_every_depth() {
        let dir = std::env::temp_dir().join(format!("pktengine-man-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = man_pages(cli(), &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "pktengine-ctl-route-show.1",
                "pktengine-ctl-route.1",
                "pktengine-ctl-stats.1",
                "pktengine-ctl.1",
                "pktengine-run.1",
                "pktengine.1"
            ]
        );
        let main = std::fs::read_to_string(dir.join("pktengine.1")).unwrap();
        assert!(
            main.contains("pktengine\\-ctl(1)")
                && main.contains("pktengine\\-run(1)")
                && !main.contains("secret"),
            "{main}"
        );
        let show = std::fs::read_to_string(dir.join("pktengine-ctl-route-show.1")).unwrap();
        assert!(show.contains(".SH NAME\npktengine\\-ctl\\-route\\-show \\- pktengine ctl route show, see pktengine\\-ctl\\-route(1)"), "{show}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = String::from_utf8(completions(&cli(), shell)).unwrap();
            assert!(s.contains("stats") && s.contains("config"), "{s}");
            assert!(
                !s.contains("secret"),
                "{shell}: a hidden subcommand is offered:\n{s}"
            );
        }
    }
}
