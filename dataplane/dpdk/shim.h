/*
 * The DPDK surface GigaCompute uses, for bindgen, plus gc_* wrappers around DPDK's
 * static-inline fast path (bindgen cannot link to inline functions; shim.c compiles them
 * into real symbols). Keep this small: every name here is a name the Rust side calls.
 */
#ifndef GC_DPDK_SHIM_H
#define GC_DPDK_SHIM_H

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_cycles.h>

uint16_t gc_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t gc_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *gc_pktmbuf_alloc(struct rte_mempool *mp);
void gc_pktmbuf_free(struct rte_mbuf *m);
/* Where the packet's bytes start (rte_pktmbuf_mtod). */
uint8_t *gc_mbuf_data(struct rte_mbuf *m);
/* What the RX loop needs of each mbuf of a burst, in one call per burst. */
struct gc_mbuf_view {
	uint8_t *data;     /* rte_pktmbuf_mtod */
	uint64_t ol_flags;
	uint32_t pkt_len;
	uint16_t data_len;
	uint16_t nb_segs;
};
void gc_mbuf_views(struct rte_mbuf *const *pkts, uint16_t n, struct gc_mbuf_view *out);
/* Set a single-segment mbuf's length (data_len and pkt_len); 0 if it does not fit. */
int gc_mbuf_set_len(struct rte_mbuf *m, uint16_t len);
unsigned gc_lcore_id(void);
int gc_errno(void);
uint64_t gc_rdtsc(void);
unsigned gc_ring_count(const struct rte_ring *r);
void gc_pause(void);

#endif
