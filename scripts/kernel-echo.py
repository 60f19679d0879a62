#!/usr/bin/env python3
# A kernel echo server on 198.19.1.2:7 with the engine's buffers: `kernel-echo.py BYTES`.
# SO_RCVBUF/SO_SNDBUF forced to BYTES (root may pass net.core.*mem_max) and the
# window clamped to it, so neither side offers a larger window. One connection at
# a time. Used by tests/tests/tcp_loss.rs and scripts/tcp-loss-trace.sh.
import socket, sys
B = int(sys.argv[1])
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# Set on the listener: the accepted socket inherits them (the window scale
# of the SYN-ACK is chosen from the receive buffer).
l.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, B)
l.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, B)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, B)
l.bind(("198.19.1.2", 7)); l.listen(8)
print("ready", flush=True)
while True:
    c, a = l.accept()
    while True:
        b = c.recv(1 << 16)
        if not b: break
        c.sendall(b)
    c.close()
