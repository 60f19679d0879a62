//! Test helper: attaches the steering program to an interface, binds one
//! AF_XDP socket on queue 0, prints `ready <xdp mode> <bind mode>` and keeps
//! receiving (and dropping) frames until killed. The SIGKILL test uses it to
//! show that the kernel detaches everything when the process dies.
//!
//! Usage: xsk_hold IFNAME  (run inside the interface's namespace)
use std::io::Write;
use std::time::Duration;

use engine::steer::{AttachMode, Steering};
use engine::xsk::{Desc, Port, Umem, UmemConfig, XskConfig, XskPort, BURST};

fn main() {
    let ifname = std::env::args().nth(1).expect("usage: xsk_hold IFNAME");
    let ifindex = engine::xsk::socket::ifindex(&ifname).expect("interface");
    let mut steer = Steering::load().expect("loading the steering program");
    let mut umem = Umem::new(UmemConfig {
        frame_count: 1024,
        huge_pages: false,
        ..UmemConfig::default()
    })
    .expect("UMEM");
    let cfg = XskConfig {
        rx_size: 512,
        tx_size: 512,
        fill_size: 512,
        comp_size: 512,
        ..XskConfig::default()
    };
    let mut port = XskPort::bind(&mut umem, &ifname, 0, &cfg).expect("binding");
    steer
        .set_queue_sockets(0, &[port.raw_fd()])
        .expect("socket map");
    let xdp_mode = steer.attach(ifindex, AttachMode::Auto).expect("attaching");
    port.refill(&mut umem, 512);
    println!("ready {xdp_mode} {}", port.mode());
    let _ = std::io::stdout().flush();
    let mut descs = [Desc::default(); BURST];
    loop {
        let _ = port.wait_rx(Duration::from_millis(200));
        let n = port.recv(&mut umem, &mut descs);
        umem.free_burst(&descs[..n]);
        port.refill(&mut umem, BURST);
    }
}
