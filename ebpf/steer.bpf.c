// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * pktengine's XDP steering program.
 *
 * For every frame received on a port it decides, in this order:
 *   1. drop, if the IPv4/IPv6 source is in a blocklist prefix (drop_src4/6);
 *   2. pass to the kernel, if the ethertype (after up to two VLAN tags) is in
 *      pass_ethertype, the destination is in a pass_dst4/6 prefix, or the
 *      TCP/UDP destination port is in pass_l4_port (e.g. the host's SSH);
 *   3. pass to the kernel control traffic for the engine's own addresses
 *      (local_addr4/6) and link-local multicast (224.0.0.0/24, ff02::/16):
 *      IP protocols in pass_local_proto (OSPF), TCP/UDP with the source or
 *      destination port in pass_local_port (BGP, BFD), ICMPv6 neighbor
 *      discovery and ARP for the engine's addresses when control_conf says;
 *      a routing daemon in the engine's namespace talks through the port,
 *      while transit traffic (not to the engine) never matches;
 *   4. pass to the kernel, if no engine socket serves the receive queue
 *      (so the host keeps working while the engine starts);
 *   5. otherwise redirect into an AF_XDP socket of the queue; when several
 *      sockets share the queue, a symmetric flow hash picks one, so both
 *      directions of a flow land on the same worker.
 * Each decision is counted in the per-CPU `counters` map.
 *
 * The header walk checks every read against data_end (the verifier needs it,
 * and a truncated frame simply matches fewer rules and goes to the engine,
 * which counts its drop reason).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STEER_XSK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STEER_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct queue_conf);
} queues SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_ETHERTYPES);
	__type(key, __u16);
	__type(value, __u8);
} pass_ethertype SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STEER_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
} pass_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STEER_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u8);
} pass_dst6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_PORTS);
	__type(key, struct l4_port_key);
	__type(value, __u8);
} pass_l4_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STEER_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
} drop_src4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STEER_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u8);
} drop_src6 SEC(".maps");

/* The engine's own addresses (network byte order), link-local ones included. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_LOCAL_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} local_addr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_LOCAL_ADDRS);
	__type(key, struct in6_addr);
	__type(value, __u8);
} local_addr6 SEC(".maps");

/* IP protocols to the engine's addresses that the kernel gets (index: protocol). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} pass_local_proto SEC(".maps");

/* TCP/UDP ports (source or destination) to the engine's addresses that the kernel gets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_PORTS);
	__type(key, struct l4_port_key);
	__type(value, __u8);
} pass_local_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct control_conf);
} control SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_VERDICTS);
	__type(key, __u32);
	__type(value, struct verdict_count);
} counters SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

/* What the header walk found. Addresses stay in network byte order. */
struct flow {
	__u16 ethertype; /* host order, after VLAN tags */
	__u8 l3;         /* 4, 6 or 0 (not IP, or truncated IP header) */
	__u8 l4proto;
	__u8 has_ports;  /* TCP/UDP header present and not a fragment */
	__u8 has_icmp6;  /* ICMPv6 type read (not a fragment) */
	__u8 icmp6_type;
	__u8 has_ns_target; /* a neighbor solicitation's target read */
	__u8 ns_target[16];
	__u8 has_arp_tpa; /* ARP for IPv4 over Ethernet: target address read */
	__u32 arp_tpa;   /* network order */
	__u16 sport, dport; /* host order */
	__u32 src4, dst4;
	__u8 src6[16], dst6[16];
};

static __always_inline void count(__u32 verdict, __u64 bytes)
{
	struct verdict_count *c = bpf_map_lookup_elem(&counters, &verdict);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* The murmur3 finaliser: cheap, and every input bit moves every output bit. */
static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * Symmetric flow hash: the two addresses and the two ports enter sorted, so
 * swapping source and destination gives the same value. engine::steer::flow_hash
 * computes the same function; a test holds them together.
 */
static __always_inline __u32 flow_hash(__u32 a, __u32 b, __u16 pa, __u16 pb, __u8 proto)
{
	__u32 lo = a < b ? a : b, hi = a < b ? b : a;
	__u32 plo = pa < pb ? pa : pb, phi = pa < pb ? pb : pa;
	__u32 h = 0x9e3779b9U ^ proto;

	h = mix32(h ^ lo);
	h = mix32(h ^ hi);
	h = mix32(h ^ ((plo << 16) | phi));
	return h;
}

static __always_inline __u32 fold6(const __u8 *a)
{
	__u32 w0 = ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
	__u32 w1 = ((__u32)a[4] << 24) | ((__u32)a[5] << 16) | ((__u32)a[6] << 8) | a[7];
	__u32 w2 = ((__u32)a[8] << 24) | ((__u32)a[9] << 16) | ((__u32)a[10] << 8) | a[11];
	__u32 w3 = ((__u32)a[12] << 24) | ((__u32)a[13] << 16) | ((__u32)a[14] << 8) | a[15];

	return w0 ^ w1 ^ w2 ^ w3;
}

static __always_inline void parse_ports(struct flow *f, void *l4, void *data_end)
{
	__be16 *ports = l4;

	if (f->l4proto == IPPROTO_ICMPV6) {
		__u8 *type = l4;

		if ((void *)(type + 1) > data_end)
			return;
		f->icmp6_type = *type;
		f->has_icmp6 = 1;
		/* NS: type, code, checksum, reserved (8 bytes), then the target. */
		if (*type == 135 && (void *)(type + 24) <= data_end) {
			__builtin_memcpy(f->ns_target, type + 8, 16);
			f->has_ns_target = 1;
		}
		return;
	}
	if (f->l4proto != IPPROTO_TCP && f->l4proto != IPPROTO_UDP)
		return;
	if ((void *)(ports + 2) > data_end)
		return;
	f->sport = bpf_ntohs(ports[0]);
	f->dport = bpf_ntohs(ports[1]);
	f->has_ports = 1;
}

static __always_inline void parse(struct flow *f, void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__u16 proto;
	__u32 off;

	if ((void *)(eth + 1) > data_end)
		return;
	proto = eth->h_proto;
	off = sizeof(*eth);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *tag;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = data + off;
		if ((void *)(tag + 1) > data_end)
			return;
		proto = tag->proto;
		off += sizeof(*tag);
	}
	f->ethertype = bpf_ntohs(proto);

	if (proto == bpf_htons(ETH_P_ARP)) {
		/* htype 1, ptype IPv4, hlen 6, plen 4, op; sha, spa, tha, tpa. */
		__u8 *arp = data + off;

		if ((void *)(arp + 28) > data_end)
			return;
		if (arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0 || arp[4] != 6 ||
		    arp[5] != 4)
			return;
		__builtin_memcpy(&f->arp_tpa, arp + 24, 4);
		f->has_arp_tpa = 1;
	} else if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return;
		ihl = ip->ihl;
		if (ihl < 5)
			return;
		f->l3 = 4;
		f->src4 = ip->saddr;
		f->dst4 = ip->daddr;
		f->l4proto = ip->protocol;
		/* Fragments hash without ports so that all of a datagram stays together. */
		if (ip->frag_off & bpf_htons(0x3fff))
			return;
		parse_ports(f, data + off + ihl * 4, data_end);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u8 nexthdr;

		if ((void *)(ip6 + 1) > data_end)
			return;
		f->l3 = 6;
		__builtin_memcpy(f->src6, &ip6->saddr, 16);
		__builtin_memcpy(f->dst6, &ip6->daddr, 16);
		nexthdr = ip6->nexthdr;
		off += sizeof(*ip6);
		/* Skip a bounded number of extension headers to find TCP/UDP. */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u8 *ext;

			if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
			    nexthdr != IPPROTO_DSTOPTS && nexthdr != IPPROTO_FRAGMENT)
				break;
			if (off > 1024)
				return;
			ext = data + off;
			if ((void *)(ext + 8) > data_end)
				return;
			if (nexthdr == IPPROTO_FRAGMENT) {
				f->l4proto = ext[0];
				return; /* a fragment: no ports */
			}
			nexthdr = ext[0];
			off += ((__u32)ext[1] + 1) * 8;
		}
		f->l4proto = nexthdr;
		if (off > 1024)
			return;
		parse_ports(f, data + off, data_end);
	}
}

/* Whether the frame is for the engine itself: one of its addresses or a link-local group. */
static __always_inline int to_local(const struct flow *f)
{
	if (f->l3 == 4) {
		/* 224.0.0.0/24: link-local multicast (OSPF's 224.0.0.5/6, VRRP...). */
		if ((bpf_ntohl(f->dst4) & 0xffffff00U) == 0xe0000000U)
			return 1;
		return bpf_map_lookup_elem(&local_addr4, &f->dst4) != 0;
	}
	if (f->l3 == 6) {
		/* ff02::/16: link-local scope multicast (all-nodes, OSPFv3, solicited-node). */
		if (f->dst6[0] == 0xff && f->dst6[1] == 0x02)
			return 1;
		return bpf_map_lookup_elem(&local_addr6, f->dst6) != 0;
	}
	return 0;
}

/* Control traffic the kernel's routing daemons speak, to the engine's addresses. */
static __always_inline int for_kernel(const struct flow *f)
{
	__u32 zero = 0, proto = f->l4proto;
	struct control_conf *cc = bpf_map_lookup_elem(&control, &zero);
	__u8 *on;

	if (!cc || !cc->on)
		return 0;
	/* ARP for the engine's addresses; the rest (a NAT pool, VIPs) the engine answers. */
	if (f->has_arp_tpa)
		return cc->arp && bpf_map_lookup_elem(&local_addr4, &f->arp_tpa);
	if (!f->l3 || !to_local(f))
		return 0;
	on = bpf_map_lookup_elem(&pass_local_proto, &proto);
	if (on && *on)
		return 1;
	if (f->has_ports) {
		struct l4_port_key k = { .port = f->dport, .proto = f->l4proto };

		if (bpf_map_lookup_elem(&pass_local_port, &k))
			return 1;
		k.port = f->sport;
		if (bpf_map_lookup_elem(&pass_local_port, &k))
			return 1;
	}
	/*
	 * RS 133, RA 134, NS 135, NA 136, redirect 137. A solicitation for an
	 * address that is not the engine's (a load-balancer VIP, say) stays with
	 * the engine, which answers for it; the kernel would not.
	 */
	if (f->has_icmp6 && f->icmp6_type >= 133 && f->icmp6_type <= 137) {
		if (!cc->nd)
			return 0;
		if (f->icmp6_type == 135)
			return f->has_ns_target &&
			       bpf_map_lookup_elem(&local_addr6, f->ns_target) != 0;
		return 1;
	}
	return 0;
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct flow f = {};
	struct queue_conf *qc;
	__u32 queue = ctx->rx_queue_index;
	__u32 hash = 0, slot;
	long ret;

	parse(&f, data, data_end);

	if (f.l3 == 4) {
		struct lpm_v4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, &f.src4, 4);
		if (bpf_map_lookup_elem(&drop_src4, &k)) {
			count(STEER_DROP_SRC_PREFIX, bytes);
			return XDP_DROP;
		}
	} else if (f.l3 == 6) {
		struct lpm_v6_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, f.src6, 16);
		if (bpf_map_lookup_elem(&drop_src6, &k)) {
			count(STEER_DROP_SRC_PREFIX, bytes);
			return XDP_DROP;
		}
	}

	if (f.ethertype && bpf_map_lookup_elem(&pass_ethertype, &f.ethertype)) {
		count(STEER_PASS_ETHERTYPE, bytes);
		return XDP_PASS;
	}

	if (f.l3 == 4) {
		struct lpm_v4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, &f.dst4, 4);
		if (bpf_map_lookup_elem(&pass_dst4, &k)) {
			count(STEER_PASS_DST_PREFIX, bytes);
			return XDP_PASS;
		}
	} else if (f.l3 == 6) {
		struct lpm_v6_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, f.dst6, 16);
		if (bpf_map_lookup_elem(&pass_dst6, &k)) {
			count(STEER_PASS_DST_PREFIX, bytes);
			return XDP_PASS;
		}
	}

	if (f.has_ports) {
		struct l4_port_key k = { .port = f.dport, .proto = f.l4proto };

		if (bpf_map_lookup_elem(&pass_l4_port, &k)) {
			count(STEER_PASS_L4_PORT, bytes);
			return XDP_PASS;
		}
	}

	if (for_kernel(&f)) {
		count(STEER_PASS_CONTROL, bytes);
		return XDP_PASS;
	}

	qc = bpf_map_lookup_elem(&queues, &queue);
	if (!qc || qc->nsocks == 0) {
		count(STEER_PASS_NO_SOCKET, bytes);
		return XDP_PASS;
	}
	slot = 0;
	if (qc->nsocks > 1) {
		if (f.l3 == 4)
			hash = flow_hash(bpf_ntohl(f.src4), bpf_ntohl(f.dst4), f.sport, f.dport,
					 f.l4proto);
		else if (f.l3 == 6)
			hash = flow_hash(fold6(f.src6), fold6(f.dst6), f.sport, f.dport, f.l4proto);
		slot = hash % qc->nsocks;
	}
	if (slot >= STEER_SOCKS_PER_QUEUE)
		slot = 0;
	ret = bpf_redirect_map(&xsks, queue * STEER_SOCKS_PER_QUEUE + slot, XDP_PASS);
	if (ret == XDP_REDIRECT)
		count(STEER_TO_ENGINE, bytes);
	else
		count(STEER_PASS_NO_SOCKET, bytes);
	return ret;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
