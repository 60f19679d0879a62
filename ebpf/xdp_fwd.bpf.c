// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The in-kernel forwarding baseline of the system benchmark (scripts/bench.sh,
 * DUT "xdp-redirect"): a native XDP program on the DUT's ingress veth that
 * forwards every IPv4 and IPv6 frame to one egress interface, as a router with
 * one route and one resolved next hop would:
 *   - parse Ethernet and the IPv4 header (IHL checked) or the IPv6 header;
 *   - TTL / hop limit <= 1: XDP_PASS (the kernel answers with ICMP time exceeded);
 *   - decrement TTL, patch the IPv4 header checksum incrementally (RFC 1624);
 *   - rewrite source MAC (the egress interface's) and destination MAC (the
 *     next hop's);
 *   - bpf_redirect() to the egress ifindex.
 * Everything else (ARP, ...) goes to the kernel.
 *
 * The egress ifindex and the two MACs are compile-time constants, set by the
 * script that builds the program for one topology:
 *   clang -O2 -g -target bpf -DOUT_IFINDEX=7 \
 *     -DSRC_MAC=0x02,0x00,0x00,0x00,0x00,0x01 -DDST_MAC=0x02,... -c xdp_fwd.bpf.c
 * The build is little-endian only (x86-64, arm64), as the byte swaps assume.
 * Constants need no map, no user-space loader and no bpffs: `ip link set dev X
 * xdpdrv obj xdp_fwd.o sec xdp` loads it, and deleting the namespace removes it.
 * As with every redirect into a veth in native mode, the egress veth's peer must
 * have an XDP program (the sink's steering program) or the frames are dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* Self-contained (no libbpf headers: the script builds it with the system's
 * clang and kernel headers only). */
#define SEC(name) __attribute__((section(name), used))
#define bpf_htons(x) ((__be16)__builtin_bswap16(x))
#define bpf_ntohs(x) __builtin_bswap16(x)
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect;

#ifndef OUT_IFINDEX
#error "define OUT_IFINDEX, SRC_MAC and DST_MAC (see the comment at the top)"
#endif

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), on host-order 16-bit values. */
static __always_inline __u16 csum_update16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u32)(__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	const unsigned char src_mac[ETH_ALEN] = { SRC_MAC };
	const unsigned char dst_mac[ETH_ALEN] = { DST_MAC };

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 old, new;

		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
			return XDP_PASS;
		if (ip->ttl <= 1)
			return XDP_PASS;
		/* TTL is the high byte of the 16-bit word it shares with the protocol. */
		old = (__u16)ip->ttl << 8 | ip->protocol;
		ip->ttl--;
		new = (__u16)ip->ttl << 8 | ip->protocol;
		ip->check = bpf_htons(csum_update16(bpf_ntohs(ip->check), old, new));
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return XDP_PASS;
		ip6->hop_limit--;
	} else {
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src_mac, ETH_ALEN);
	return bpf_redirect(OUT_IFINDEX, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
