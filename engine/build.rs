//! Builds the XDP steering program (`ebpf/steer.bpf.c`) with clang and
//! generates its libbpf-rs skeleton into OUT_DIR.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "../ebpf/steer.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out.join("steer.bpf.o"))
        .clang_args([
            // Debian's clang finds asm/types.h only with the multiarch path.
            "-I/usr/include/x86_64-linux-gnu",
            "-I../ebpf",
            "-Wall",
        ])
        .build_and_generate(out.join("steer.skel.rs"))
        .expect("building ebpf/steer.bpf.c");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=../ebpf/steer.h");
}
