// Package netstack is Satellite's end of the host's layer-3 tunnel (remote/tunnel): a
// userspace TCP/IP stack (gVisor's tcpip, as wireguard-go's tun/netstack and Tailscale's
// userspace mode use it) on one NIC fed with the tunnel's IP packets. It terminates each
// flow a pod on the host opens towards the cluster's ranges (Service range, pod ranges,
// cluster DNS) and opens the same destination address and port from Satellite's own
// process, so Satellite needs no NET_ADMIN and no device of its own.
//
// The NIC is promiscuous (it takes packets to any address) and spoofing (it answers from
// those addresses); packets whose destination is outside Config.Ranges are dropped before
// the stack sees them.
//
// TCP: gVisor's tcp.Forwarder hands over each SYN; the destination is dialed first, so a
// refused or unreachable one is answered with a RST at once, and only then is the
// handshake completed. The two connections are spliced, a FIN either way passed on as a
// half-close (CloseWrite), a reset or an error closing both. SACK, CUBIC and buffers of
// 1 MiB growing to 4 MiB are set for bulk transfers over the SSH round trip.
//
// UDP: gVisor's udp.Forwarder hands over the first datagram of each (source, destination)
// pair; an endpoint for that pair and a socket dialed to the destination relay datagrams
// both ways until neither has carried one for Config.UDPIdle.
//
// ICMP echo to the ranges is not answered: the stack would answer for every address in
// them, reachable or not.
//
// Config.MaxFlows bounds the TCP connections and UDP associations open at once (a TCP flow
// past it is reset, a datagram dropped); the forwarder also bounds handshakes waiting for
// their dial to 512. Run owns every goroutine, gVisor's forwarder goroutines included
// through the flow count, and returns after all have stopped.
//
// Throughput is bounded by per-packet work, not bytes: every IP packet is one SSH message
// through sshd's event loop (which reads and writes the tun device one packet per turn),
// so the MTU (default 16000, that of the host's device; pods share the host's network
// namespace, so it is their MSS too) sets the figures that TestIntegrationThroughput
// prints. Satellite to host is the slower way: sshd's write of each packet into the
// device runs the host's TCP receive path in sshd's one thread.
package netstack
