/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Shared definitions of the steering program and its user-space loader
 * (engine/src/steer/). Every struct here is a map key or value: the Rust side
 * mirrors it field for field (#[repr(C)]), so change both together.
 */
#ifndef PKTENGINE_STEER_H
#define PKTENGINE_STEER_H

/* Queues the program knows about, and sockets that may share one queue. */
#define STEER_MAX_QUEUES 64
#define STEER_SOCKS_PER_QUEUE 4
#define STEER_XSK_SLOTS (STEER_MAX_QUEUES * STEER_SOCKS_PER_QUEUE)

/* Rule table sizes. */
#define STEER_MAX_ETHERTYPES 64
#define STEER_MAX_PREFIXES 4096
#define STEER_MAX_PORTS 1024
#define STEER_MAX_LOCAL_ADDRS 256

/* Why a frame got its verdict: index into the per-CPU `counters` map. */
enum steer_verdict {
	STEER_TO_ENGINE = 0,      /* redirected into an AF_XDP socket */
	STEER_PASS_NO_SOCKET = 1, /* no socket bound for the receive queue */
	STEER_PASS_ETHERTYPE = 2, /* pass rule on the ethertype */
	STEER_PASS_DST_PREFIX = 3,/* pass rule on the IPv4/IPv6 destination */
	STEER_PASS_L4_PORT = 4,   /* pass rule on the TCP/UDP destination port */
	STEER_DROP_SRC_PREFIX = 5,/* drop rule on the IPv4/IPv6 source */
	STEER_PASS_CONTROL = 6,   /* control traffic to the engine's own addresses */
	STEER_VERDICTS = 7,
};

/* Per-queue configuration: how many sockets serve the queue (0 = none). */
struct queue_conf {
	__u32 nsocks;
};

/* Pass rule on a TCP/UDP destination port, both in host byte order. */
struct l4_port_key {
	__u16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;   /* must be zero */
};

/*
 * Control traffic for the kernel (routing daemons in the engine's namespace),
 * only for frames to the engine's own addresses (local_addr4/6) or to a
 * link-local multicast group, when `on`: `nd` passes ICMPv6 RS/RA/NS/NA/redirect, `arp`
 * passes ARP whose target address is one of the engine's.
 */
struct control_conf {
	__u8 nd;
	__u8 arp;
	__u8 on;  /* the rule at all: off, a frame costs one array lookup */
	__u8 pad;
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* One verdict's counters (per CPU). */
struct verdict_count {
	__u64 packets;
	__u64 bytes;
};

#endif
