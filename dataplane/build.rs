//! With the `dpdk` feature: generate bindings for dpdk/shim.h and compile dpdk/shim.c, both
//! with the flags pkg-config gives for Debian's libdpdk (22.11). Without it: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;

    pub fn build() {
        println!("cargo:rerun-if-changed=dpdk/shim.h");
        println!("cargo:rerun-if-changed=dpdk/shim.c");
        let lib = pkg_config::Config::new()
            .atleast_version("22.11")
            .cargo_metadata(false)
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!(
                    "the dpdk feature needs DPDK 22.11 (apt-get install dpdk-dev libdpdk-dev): {e}"
                )
            });
        let cflags = cflags();

        let mut cc = cc::Build::new();
        cc.file("dpdk/shim.c").opt_level(3).warnings(false);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("gc_dpdk_shim");

        // Link only what we call; EAL loads the poll-mode drivers (net_pcap, net_tap, ...)
        // as plugins from its driver directory at run time.
        for dir in &lib.link_paths {
            println!("cargo:rustc-link-search=native={}", dir.display());
        }
        for l in [
            "rte_net_ring",
            "rte_ethdev",
            "rte_mbuf",
            "rte_mempool",
            "rte_ring",
            "rte_eal",
            "rte_kvargs",
        ] {
            println!("cargo:rustc-link-lib=dylib={l}");
        }

        let bindings = bindgen::Builder::default()
            .header("dpdk/shim.h")
            .clang_args(&cflags)
            .rust_edition(bindgen::RustEdition::Edition2024)
            .allowlist_function("gc_.*")
            .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore)")
            .allowlist_function("rte_(lcore_count|get_main_lcore|socket_id|lcore_to_socket_id)")
            .allowlist_function("rte_get_tsc_hz|rte_strerror")
            .allowlist_function("rte_pktmbuf_pool_create|rte_pktmbuf_free_bulk")
            .allowlist_function("rte_mempool_(avail|in_use)_count|rte_mempool_free")
            .allowlist_function("rte_ring_(create|free)|rte_eth_from_ring")
            .allowlist_function("rte_zmalloc_socket|rte_free")
            .allowlist_function(
                "rte_eth_(dev_count_avail|find_next_owned_by|dev_get_port_by_name|dev_get_name_by_port)",
            )
            .allowlist_function("rte_eth_dev_(configure|start|stop|close|info_get|socket_id)")
            .allowlist_function("rte_eth_dev_(set_mtu|rss_hash_conf_get|rss_hash_update)")
            .allowlist_function("rte_eth_(rx|tx)_queue_setup|rte_eth_macaddr_get")
            .allowlist_function("rte_eth_promiscuous_(enable|disable)|rte_eth_link_get_nowait")
            .allowlist_function("rte_eth_stats_(get|reset)")
            .allowlist_type("gc_mbuf_view|rte_eth_conf|rte_eth_dev_info|rte_eth_stats")
            .allowlist_type("rte_eth_rxconf|rte_eth_txconf|rte_eth_link|rte_ether_addr")
            .allowlist_type("rte_eth_rss_conf|rte_mbuf|rte_mempool|rte_ring")
            .allowlist_var("RTE_ETH_.*|RTE_MBUF_.*|RTE_MAX_ETHPORTS|RTE_ETHDEV_QUEUE_STAT_CNTRS")
            .allowlist_var("RING_F_.*|SOCKET_ID_ANY|RTE_PKTMBUF_HEADROOM")
            // Packed-and-aligned structs bindgen cannot lay out (NOTES.md); we never touch them.
            .opaque_type("rte_arp_ipv4|rte_arp_hdr|rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_generic_hdr")
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(false)
            .generate()
            .expect("bindgen over dpdk/shim.h");
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("dpdk_sys.rs");
        bindings.write_to_file(&out).expect("writing DPDK bindings");
    }

    /// pkg-config's cflags for libdpdk, as given: its headers need the `-march=corei7`
    /// (SSSE3) baseline Debian's DPDK was built for.
    fn cflags() -> Vec<String> {
        let out = std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("running pkg-config");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}
