"""Ports for the processes the tests start, picked before those processes bind them.

A port from `bind(("127.0.0.1", 0))` is from the kernel's ephemeral range, and so is every
port the kernel hands out later: the next such pick (two of one node's ports were once the
same), a node's own port-0 sockets, any client's outgoing connection. Any of them can take
the port between the pick and the node's bind. Ports below that range, handed out once each
in a run, are taken by nothing the kernel does on its own.
"""

import os
import socket


def _range() -> tuple[int, int]:
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 10000, max(low, 11000)


_LOW, _HIGH = _range()
# Each run starts somewhere else in the range: ports a run before left in TIME_WAIT are not
# tried first.
_next = _LOW + (os.getpid() * 7919) % (_HIGH - _LOW)


def free_port() -> int:
    """A port no earlier call of this run returned, bindable on 127.0.0.1 for TCP and UDP."""
    global _next
    for _ in range(_HIGH - _LOW):
        port = _next
        _next = _LOW + (port + 1 - _LOW) % (_HIGH - _LOW)
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, k) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {_LOW}..{_HIGH}")
