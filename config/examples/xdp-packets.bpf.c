// IPv4 packets and bytes by source address, counted by an XDP program on one interface's ingress:
// a per-CPU LRU hash, so that a flood of spoofed sources evicts old addresses instead of filling the
// map for good. Read (and drained) by xdp-packets.yaml; built by `npm run build:bpf` (CO-RE,
// vmlinux.h from this kernel's BTF). Every packet is passed on: the program only counts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Macros are not in BTF, so vmlinux.h has no <linux/if_ether.h> constants.
#define ETH_P_IP 0x0800

struct packet_counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __be32); // the IPv4 source address, in network byte order as on the wire
	__type(value, struct packet_counts);
} packets SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct packet_counts *c;
	__u64 len = data_end - data; // the whole frame, Ethernet header included
	__be32 src;

	// The verifier only lets us read headers we have shown to lie inside the packet.
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	// Untagged IPv4 only: ARP, IPv6 and VLAN-tagged frames are not counted.
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	src = ip->saddr;

	c = bpf_map_lookup_elem(&packets, &src);
	if (!c) {
		struct packet_counts first = { .packets = 1, .bytes = len };

		// Another CPU may have added the address since the lookup: then count into its entry.
		if (bpf_map_update_elem(&packets, &src, &first, BPF_NOEXIST) == 0)
			return XDP_PASS;
		c = bpf_map_lookup_elem(&packets, &src);
		if (!c)
			return XDP_PASS;
	}
	// Per-CPU values: this CPU's copy is ours alone, so plain increments are exact.
	c->packets++;
	c->bytes += len;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
