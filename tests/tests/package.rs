//! The Debian package (issue #25), built by `scripts/package.sh --dev` (cargo-deb,
//! from the debug binary already built: a release build would add minutes to the
//! suite) and installed with the real dpkg into a copy-on-write copy of this
//! machine's root (an overlay of `/` in a private mount namespace, chrooted:
//! nothing it writes reaches the machine). There the package must make its user
//! (removed from the copy first), install its files, leave the service alone,
//! and the installed `pktengine run --check` must accept the installed
//! configuration and every example; the installed unit passes `systemd-analyze
//! verify` with the installed binary and man pages; remove and purge clean up.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pktengine_tests::engine::{pktengine_bin, text, Engine};
use pktengine_tests::Netns;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The package, built once from the binary the tests run.
fn build_package() -> PathBuf {
    let target = pktengine_bin()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let o = Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .arg("--dev")
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "scripts/package.sh --dev: {}", text(&o));
    let deb = PathBuf::from(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim(),
    );
    assert!(
        deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
        "{}",
        text(&o)
    );
    deb
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let o = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(o.status.success(), "dpkg-deb {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The interfaces the examples name (`interface = "pe-lan"`, ...).
fn example_interfaces() -> Vec<String> {
    let mut v = Vec::new();
    for f in std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
    {
        if f.path().extension().is_some_and(|e| e == "toml") {
            for l in std::fs::read_to_string(f.path()).unwrap().lines() {
                if let Some(rest) = l.trim().strip_prefix("interface") {
                    let name = rest
                        .trim_start()
                        .trim_start_matches('=')
                        .trim()
                        .split('"')
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    if !name.is_empty() && !v.contains(&name) {
                        v.push(name);
                    }
                }
            }
        }
    }
    v
}

/// Runs inside the test namespace (its /sys shows the examples' interfaces),
/// in the private mount namespace `ip netns exec` makes: every mount goes with it.
const INSTALL: &str = r#"
set -euo pipefail
deb="$1"; t="$2"
mount -t tmpfs tmpfs "$t"
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
r="$t/root"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount --bind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"     # no /run/systemd/system: systemd does not run here
mount -t tmpfs tmpfs "$r/tmp"
cp "$deb" "$r/tmp/"
chroot "$r" /bin/bash -euo pipefail -c '
  deb=$(ls /tmp/pktengine_*.deb)
  # The copy of this machine has the user already (scripts/deps.sh): the package must make it.
  if getent passwd pktengine >/dev/null; then userdel pktengine; fi
  getent group pktengine >/dev/null && groupdel pktengine
  ! getent passwd pktengine
  test ! -e /usr/bin/pktengine
  echo "== dpkg -i"
  dpkg -i "$deb"
  echo "== status: $(dpkg-query -W -f="\${Status}" pktengine)"
  echo "== user: $(getent passwd pktengine)"
  echo "== files"
  dpkg -L pktengine
  echo "== conffiles"
  cat /var/lib/dpkg/info/pktengine.conffiles
  echo "== enabled: $(ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep -c pktengine || true)"
  echo "== check"
  /usr/bin/pktengine run --check --config /etc/pktengine/pktengine.toml
  for f in /usr/share/doc/pktengine/examples/*.toml; do /usr/bin/pktengine run --check --config "$f"; done
  echo "== man"
  man -l /usr/share/man/man1/pktengine.1.gz 2>&1 | cat
  echo "== bash"
  bash -c ". /usr/share/bash-completion/completions/pktengine; complete -p pktengine"
  echo "== verify"
  systemd-analyze verify /usr/lib/systemd/system/pktengine.service
  echo "== verify ok"
  dpkg -r pktengine
  echo "== removed: bin $(test -e /usr/bin/pktengine && echo kept || echo gone), conffile $(test -e /etc/pktengine/pktengine.toml && echo kept || echo gone)"
  dpkg -P pktengine
  echo "== purged: conffile $(test -e /etc/pktengine/pktengine.toml && echo kept || echo gone)"
'
"#;

#[test]
fn the_package_installs_with_dpkg_and_its_installed_example_checks() {
    let deb = build_package();

    let info = dpkg_deb(&["--info"], &deb);
    for want in [
        "Package: pktengine",
        "Section: net",
        "Priority: optional",
        "Maintainer: ",
        "adduser",
    ] {
        assert!(
            info.contains(want),
            "{want} missing from the control file:\n{info}"
        );
    }
    let depends = info
        .lines()
        .find(|l| l.trim_start().starts_with("Depends:"))
        .unwrap_or_default()
        .to_string();
    // $auto: dpkg-shlibdeps found the shared libraries the binary links.
    for lib in ["libc6", "libelf1", "zlib1g"] {
        assert!(depends.contains(lib), "{lib} not in {depends}");
    }
    let contents = dpkg_deb(&["--contents"], &deb);
    let mut wanted = vec![
        "./usr/bin/pktengine".to_string(),
        "./usr/lib/systemd/system/pktengine.service".into(),
        "./etc/pktengine/pktengine.toml".into(),
        "./usr/share/man/man1/pktengine.1.gz".into(),
        "./usr/share/man/man1/pktengine-run.1.gz".into(),
        "./usr/share/man/man1/pktengine-ctl.1.gz".into(),
        "./usr/share/man/man1/pktengine-ctl-route-add.1.gz".into(),
        "./usr/share/bash-completion/completions/pktengine".into(),
        "./usr/share/zsh/vendor-completions/_pktengine".into(),
        "./usr/share/fish/vendor_completions.d/pktengine.fish".into(),
        "./usr/share/doc/pktengine/copyright".into(),
        "./usr/share/doc/pktengine/OPERATING.md".into(),
    ];
    for f in std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .flatten()
    {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            wanted.push(format!("./usr/share/doc/pktengine/examples/{name}"));
        }
    }
    for w in &wanted {
        assert!(
            contents.lines().any(|l| l.ends_with(w.as_str())),
            "{w} is not in the package:\n{contents}"
        );
    }
    assert!(
        !contents.contains(".1 ") && !contents.lines().any(|l| l.ends_with(".1")),
        "man pages not compressed:\n{contents}"
    );

    // Dependencies resolve on this Debian (apt's solver, nothing installed).
    let o = Command::new("apt-get")
        .args(["install", "-s"])
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("Inst pktengine"),
        "apt-get install -s: {}",
        text(&o)
    );

    // The examples' interfaces, for `run --check`, in a namespace of the test.
    let ns = Netns::new("pkg").unwrap();
    let names = example_interfaces();
    for pair in names.chunks(2) {
        let peer = pair.get(1).cloned().unwrap_or_else(|| "pe-pad".into());
        ns.ip(&[
            "link", "add", &pair[0], "type", "veth", "peer", "name", &peer,
        ])
        .unwrap();
    }
    let dir = Engine::dir("pkg");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let o = ns
        .command("bash")
        .args([
            "-c",
            INSTALL,
            "install",
            deb.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = text(&o);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        o.status.success(),
        "install in the overlay root failed:\n{out}"
    );
    let section = |name: &str| -> String {
        let start = out
            .find(&format!("== {name}"))
            .unwrap_or_else(|| panic!("no `{name}` section:\n{out}"));
        let rest = &out[start..];
        let end = rest[3..].find("\n== ").map_or(rest.len(), |e| e + 3);
        rest[..end].to_string()
    };
    assert!(section("status").contains("install ok installed"), "{out}");
    let user = section("user");
    let fields: Vec<&str> = user
        .trim_start_matches("== user: ")
        .trim()
        .split(':')
        .collect();
    assert_eq!(fields.first(), Some(&"pktengine"), "{out}");
    let uid: u32 = fields.get(2).and_then(|u| u.parse().ok()).unwrap_or(0);
    assert!(uid > 0 && uid < 1000, "a system user: {user}");
    assert_eq!(fields.get(6), Some(&"/usr/sbin/nologin"), "{user}");
    let files = section("files");
    for w in &wanted {
        assert!(
            files.contains(w.trim_start_matches('.')),
            "{w} not installed:\n{files}"
        );
    }
    assert!(
        section("conffiles").contains("/etc/pktengine/pktengine.toml"),
        "{out}"
    );
    assert!(
        section("enabled").starts_with("== enabled: 0"),
        "the unit must not be enabled on install:\n{out}"
    );
    let check = section("check");
    assert_eq!(
        check.matches("configuration is valid").count(),
        1 + wanted.iter().filter(|w| w.contains("/examples/")).count(),
        "{check}"
    );
    let man = section("man");
    for sub in [
        "pktengine-run(1)",
        "pktengine-ctl(1)",
        "pktengine-route(1)",
        "pktengine-status(1)",
        "pktengine-completions(1)",
        "pktengine-man(1)",
    ] {
        assert!(
            man.contains(sub),
            "{sub} not in the installed man page:\n{man}"
        );
    }
    let bash = section("bash");
    assert!(
        bash.lines().any(|l| l.starts_with("complete ")
            && l.contains(" -F _pktengine")
            && l.ends_with(" pktengine")),
        "{bash}"
    );
    assert!(out.contains("== verify ok"), "{out}");
    assert!(
        section("removed").contains("bin gone, conffile kept"),
        "{out}"
    );
    assert!(section("purged").contains("conffile gone"), "{out}");
}
