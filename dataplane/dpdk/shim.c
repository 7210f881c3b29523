/* Real symbols for DPDK's static-inline functions; see shim.h. */
#include "shim.h"

uint16_t gc_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t gc_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *gc_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void gc_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

uint8_t *gc_mbuf_data(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, uint8_t *);
}

int gc_mbuf_set_len(struct rte_mbuf *m, uint16_t len)
{
	if (m->nb_segs != 1 || (uint32_t)m->data_off + len > m->buf_len)
		return 0;
	m->data_len = len;
	m->pkt_len = len;
	return 1;
}

void gc_mbuf_views(struct rte_mbuf *const *pkts, uint16_t n, struct gc_mbuf_view *out)
{
	/* Start every header load of the burst first, so the misses overlap... */
	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(pkts[i]);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
		/* ...then the frames': headers and the start of the transaction. */
		rte_prefetch0(data);
		rte_prefetch0(data + RTE_CACHE_LINE_SIZE);
		out[i].data = data;
		out[i].ol_flags = m->ol_flags;
		out[i].pkt_len = m->pkt_len;
		out[i].data_len = m->data_len;
		out[i].nb_segs = m->nb_segs;
	}
}

unsigned gc_lcore_id(void)
{
	return rte_lcore_id();
}

int gc_errno(void)
{
	return rte_errno;
}

uint64_t gc_rdtsc(void)
{
	return rte_rdtsc();
}

unsigned gc_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

void gc_pause(void)
{
	rte_pause();
}
