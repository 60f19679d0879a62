//! Shell completions and man pages generated from the command line (issue #25):
//! the bash script loads in a real bash, registers itself and completes
//! subcommands; the man pages render with groff without a warning, and each
//! page names every subcommand that `--help` lists at its level.
use std::path::Path;
use std::process::{Command, Stdio};

use pktengine_tests::engine::{pktengine_bin, text, Engine};

fn pktengine(args: &[&str]) -> String {
    let o = Command::new(pktengine_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "pktengine {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The subcommands `pktengine <path> --help` lists (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = pktengine(&args);
    let list = help
        .split("Commands:\n")
        .nth(1)
        .unwrap_or("")
        .split("\n\n")
        .next()
        .unwrap_or("");
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn bash_completion_loads_registers_and_completes() {
    let dir = Engine::dir("bashc");
    let script = dir.join("pktengine.bash");
    std::fs::write(&script, pktengine(&["completions", "bash"])).unwrap();
    // What bash-completion does with /usr/share/bash-completion/completions/pktengine,
    // then what a Tab after `pktengine ct` and after `pktengine ctl ro` asks.
    let probe = format!(
        r#"set -e
. {}
complete -p pktengine
COMP_WORDS=(pktengine ct); COMP_CWORD=1; COMP_LINE="pktengine ct"; COMP_POINT=${{#COMP_LINE}}
_pktengine pktengine ct pktengine
echo "first: ${{COMPREPLY[*]}}"
COMP_WORDS=(pktengine ctl ro); COMP_CWORD=2; COMP_LINE="pktengine ctl ro"; COMP_POINT=${{#COMP_LINE}}
_pktengine pktengine ro ctl
echo "second: ${{COMPREPLY[*]}}"
"#,
        script.display()
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("complete ")
            && l.contains("-F _pktengine")
            && l.ends_with(" pktengine")),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "first: ctl"), "{out}");
    assert!(out.lines().any(|l| l == "second: route"), "{out}");
    // zsh and fish: their registration headers (neither shell is installed here);
    // no shell is offered the internal socket custodian.
    assert!(pktengine(&["completions", "zsh"]).starts_with("#compdef pktengine"));
    assert!(pktengine(&["completions", "fish"]).contains("complete -c pktengine"));
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            !pktengine(&["completions", shell]).contains("custodian"),
            "{shell}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A page rendered by groff as `man` would, with every warning on.
fn render(page: &Path) -> String {
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
        .arg(page)
        .output()
        .expect("groff (scripts/deps.sh: groff-base)");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}: {}",
        page.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    // Bold and underline come as overstrikes: keep the letters.
    let mut s = String::new();
    let mut chars = String::from_utf8_lossy(&o.stdout)
        .into_owned()
        .chars()
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        s.push(c);
    }
    s
}

#[test]
fn man_pages_render_and_name_every_subcommand() {
    let dir = Engine::dir("man");
    let out = pktengine(&["man", dir.to_str().unwrap()]);
    assert!(out.is_empty(), "{out}");
    // Without a directory: the main page on stdout, the same as the file.
    assert_eq!(
        pktengine(&["man"]),
        std::fs::read_to_string(dir.join("pktengine.1")).unwrap()
    );

    let top = subcommands(&[]);
    assert!(
        top.len() >= 6
            && top.contains(&"completions".to_string())
            && top.contains(&"man".to_string()),
        "{top:?}"
    );
    let main = render(&dir.join("pktengine.1"));
    for sub in &top {
        assert!(
            main.contains(&format!("pktengine-{sub}(1)")),
            "pktengine.1 does not name {sub}:\n{main}"
        );
        assert!(
            dir.join(format!("pktengine-{sub}.1")).is_file(),
            "no page for {sub}"
        );
    }
    assert!(
        !main.contains("ctl-socket-custodian"),
        "the hidden internal subcommand is documented"
    );
    let ctl = subcommands(&["ctl"]);
    assert!(
        ctl.contains(&"stats".to_string()) && ctl.contains(&"reload".to_string()),
        "{ctl:?}"
    );
    let page = render(&dir.join("pktengine-ctl.1"));
    for sub in &ctl {
        assert!(
            page.contains(&format!("pktengine-ctl-{sub}(1)")),
            "pktengine-ctl.1 does not name {sub}:\n{page}"
        );
    }
    assert!(page.contains("--socket"), "{page}");
    let run = render(&dir.join("pktengine-run.1"));
    for opt in ["--config", "--check", "--allow-privileged"] {
        assert!(run.contains(opt), "pktengine-run.1 lacks {opt}:\n{run}");
    }
    // Every page renders, and `man -l` reads it as man does.
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        render(&f.path());
    }
    let o = Command::new("man")
        .arg("-l")
        .arg(dir.join("pktengine-ctl.1"))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("Talk to a running engine"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
