// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * Who receives the traffic (issue 19): the process that reads a socket, remembered per socket
 * 4-tuple in an LRU map that the collector joins to its exported flows. Separate from pl.c (its
 * own object and bpf2go output): it is optional (collect --receivers), it is tracing, not packet,
 * code, and pl.c's cost per packet stays what it is.
 *
 * Hook: the raw tracepoint sock:sock_recv_length (Linux 6.5+), which sock_recvmsg fires after
 * the protocol's recvmsg returned, in the reading process's context (so bpf_get_current_* name
 * the receiver): read(2), recv*(2), recvmmsg and io_uring receives of every TCP and UDP socket,
 * IPv4 and IPv6; and sock:inet_sock_set_state for TCP sockets entering LISTEN (listen(2)), so
 * TCP servers are known before their first read. Not seen: UDP sockets no process has read
 * yet, and data never read through sock_recvmsg (splice, kTLS's own recvmsg, TCP zero-copy
 * receive via mmap). fentry/fexit on tcp_recvmsg or inet_csk_accept
 * would see accepts too, but this project's VM kernels refuse every BPF_PROG_TYPE_TRACING load
 * with EPERM; a raw tracepoint needs no trampoline.
 * Cost is per successful read, not per packet: the common case is one 16-byte read and two
 * lookups that find the same socket and process already recorded, and returns.
 *
 * Kernel structs come from a few CO-RE declarations below (preserve_access_index) instead of a
 * vmlinux.h dump: the object stays reproducible from UAPI headers, and the loader relocates the
 * field offsets against the running kernel's BTF.
 */
#include <linux/bpf.h>
#include <linux/in6.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PL_AF_INET 2
#define PL_AF_INET6 10
#define PL_IPPROTO_TCP 6
#define PL_IPPROTO_UDP 17

/* The kernel's own layouts, only the fields read; matched by name at load time. */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

/*
 * A socket as the flows see its incoming packets: remote = the flow's source, local = its
 * destination. Addresses are IPv6 or IPv4-mapped (as in pl_flow_key); a socket not connected
 * (a UDP server) has remote zero, and one bound to the wildcard has local_addr zero. Ports are
 * host order. netns: the socket's network namespace inode, so equal addresses in two namespaces
 * (test veths, pods) stay apart.
 */
struct pl_recv_key {
	__u8 remote_addr[16];
	__u8 local_addr[16];
	__u32 netns;
	__u16 remote_port;
	__u16 local_port;
	__u8 ip_proto;
	__u8 pad[3];
};

/* The receiving thread and its process. seen_ns: bpf_ktime_get_ns() when recorded. */
struct pl_receiver {
	__u64 cgroup_id; /* cgroup v2 id: the inode of its directory under the cgroup2 mount */
	__u64 seen_ns;
	__u32 tgid; /* the process (pid in user space) */
	__u32 pid;  /* the thread */
	__u32 uid;
	char comm[16];
};

/* What the flows join on: per socket key, who read it. Outlives the socket (a connection closed
 * before the next flow export is still named) until the LRU drops it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); /* resized by the loader */
	__type(key, struct pl_recv_key);
	__type(value, struct pl_receiver);
} pl_receivers SEC(".maps");

/*
 * The fast path, per socket (its kernel address): tag, the first 16 bytes of its sock_common
 * (skc_addrpair, skc_hash, skc_portpair: its IPv4 addresses and its ports) folded; the process
 * last recorded; its key. A read by that process of a socket whose tag has not changed -- the
 * common case -- costs one 16-byte read and two lookups (this map, then pl_receivers by the
 * stored key, which keeps a busy socket's entry recent in the LRU or writes it again if it was
 * dropped) instead of the full key's nine reads.
 * A socket freed and its memory reused for another with the same IPv4 addresses and ports, read
 * by the same process, is taken for the old one: same key anyway. IPv6 addresses are not in the
 * tag: a reused IPv6 socket with equal ports keeps the old socket's key until that entry goes.
 */
struct pl_recv_sock {
	__u64 tag;
	__u32 tgid;
	__u32 pad;
	struct pl_recv_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); /* resized by the loader, as pl_receivers */
	__type(key, __u64);
	__type(value, struct pl_recv_sock);
} pl_recv_socks SEC(".maps");

/* Per-CPU counters: [0] socket events seen (reads, listens), [1] entries written (a new
 * socket, or another process). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pl_recv_stats SEC(".maps");

static __always_inline void pl_recv_count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&pl_recv_stats, &i);

	if (v)
		*v += 1;
}

static __always_inline void pl_recv_map4(__u8 *dst, __be32 a)
{
	if (!a) /* the wildcard and "not connected" are all zeroes, IPv4 or IPv6 */
		return;
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(&dst[12], &a, 4);
}

/* Fills k from the socket's fields; false for a socket of another protocol or family. */
static __always_inline bool pl_recv_key_of(struct sock *sk, struct pl_recv_key *k)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);

	if (proto != PL_IPPROTO_TCP && proto != PL_IPPROTO_UDP)
		return false;
	if (family == PL_AF_INET) {
		pl_recv_map4(k->remote_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		pl_recv_map4(k->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
	} else if (family == PL_AF_INET6) {
		BPF_CORE_READ_INTO(&k->remote_addr, sk, __sk_common.skc_v6_daddr);
		BPF_CORE_READ_INTO(&k->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
	} else {
		return false;
	}
	k->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k->ip_proto = proto;
	return true;
}

static __always_inline int pl_recv_note(struct sock *sk)
{
	struct pl_recv_sock *fast, mark = {};
	struct pl_receiver *old, who = {};
	__u64 pidtgid = bpf_get_current_pid_tgid();
	__u64 skp = (__u64)sk, head[2] = {};

	if (!sk)
		return 0;
	pl_recv_count(0);
	bpf_probe_read_kernel(head, sizeof(head), &sk->__sk_common.skc_daddr);
	mark.tag = head[0] ^ (head[1] * 0x9e3779b97f4a7c15ULL);
	mark.tgid = pidtgid >> 32;
	fast = bpf_map_lookup_elem(&pl_recv_socks, &skp);
	if (fast && fast->tag == mark.tag && fast->tgid == mark.tgid) {
		if (bpf_map_lookup_elem(&pl_receivers, &fast->key))
			return 0; /* known socket, same reader: the common case */
		mark.key = fast->key; /* its entry was dropped while the socket is busy: again */
	} else {
		if (!pl_recv_key_of(sk, &mark.key))
			return 0;
		bpf_map_update_elem(&pl_recv_socks, &skp, &mark, BPF_ANY);
		old = bpf_map_lookup_elem(&pl_receivers, &mark.key);
		if (old && old->tgid == mark.tgid)
			return 0;
	}
	who.tgid = mark.tgid;
	who.pid = (__u32)pidtgid;
	who.uid = (__u32)bpf_get_current_uid_gid();
	who.cgroup_id = bpf_get_current_cgroup_id();
	who.seen_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(who.comm, sizeof(who.comm));
	bpf_map_update_elem(&pl_receivers, &mark.key, &who, BPF_ANY);
	pl_recv_count(1);
	return 0;
}

/*
 * args: the socket, the read's return value, its flags (include/trace/events/sock.h). Only reads
 * that returned data count: a server's EAGAIN polls cost the early return and nothing else. A
 * raw tracepoint attaches by name, without tracefs.
 */
SEC("raw_tp/sock_recv_length")
int pl_recv(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[1] <= 0)
		return 0;
	return pl_recv_note((struct sock *)ctx->args[0]);
}

#define PL_TCP_LISTEN 10

/*
 * sock:inet_sock_set_state (args: the socket, old state, new state): a socket enters LISTEN in
 * listen(2), in its process's context, with its address and port bound, so a TCP server is
 * known from its listen, before it reads anything (the listener's key names it for the flows of
 * connections it has not read yet). Every other state change returns at once: most happen in
 * softirq, where the current process is not the socket's, and SYN_SENT is entered in connect(2)
 * before the local port is chosen (a client is known from its first read instead).
 */
SEC("raw_tp/inet_sock_set_state")
int pl_recv_state(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[2] != PL_TCP_LISTEN)
		return 0;
	return pl_recv_note((struct sock *)ctx->args[0]);
}
