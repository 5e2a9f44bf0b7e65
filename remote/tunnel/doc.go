// Package tunnel opens OpenSSH's layer-3 tunnel (the tun@openssh.com channel that `ssh -w`
// uses) on the SSH connection to a remote host, so that the host can route chosen ranges
// (a cluster's Service and pod ranges) into it with nothing installed but sshd. The other
// end of the tunnel is a userspace TCP/IP stack in Satellite (provider/network/netstack).
// This package knows SSH and the host's `ip` commands, nothing of Kubernetes.
//
// # Channel
//
// The channel's open payload is two uint32s: the mode, SSH_TUNMODE_POINTOPOINT = 1 (ssh.h),
// and the unit, a device number or SSH_TUNID_ANY = 0x7fffffff (clientloop.c
// client_request_tun_fwd, serverloop.c server_request_tun). sshd needs `PermitTunnel yes`
// or `PermitTunnel point-to-point` and, on Linux, opens /dev/net/tun with the name
// tun<unit> (openbsd-compat/port-tun.c sys_tun_open): Open chooses a unit no interface on
// the host uses, so the device's name is known before the channel opens.
//
// # Wire format
//
// sshd makes the channel a datagram channel: each IP packet is the data of one
// SSH_MSG_CHANNEL_DATA message (channels.c, c->datagram), and that data is
//
//	uint32  address family, OpenBSD's numbering: 2 for IPv4, 24 for IPv6
//	byte[n] the IP packet
//
// with no length of its own besides the SSH string's (port-tun.c sys_tun_infilter with
// SSH_TUN_PREPEND_AF and SSH_TUN_COMPAT_AF, as on Linux). Going the other way sshd strips
// the four bytes without reading them (sys_tun_outfilter). Verified against Debian's
// OpenSSH 9.2 (TestIntegrationWire): a ping from the host arrives as 00 00 00 02 45 ...,
// the kernel's IPv6 solicitations as 00 00 00 18 60 ....
//
// x/crypto/ssh's Channel is a byte stream that does not keep message boundaries, so the
// Decoder finds each packet's end from its IP header (IPv4 total length, IPv6 payload
// length) and stops with ErrFrame on anything else. Each packet is written with one Write,
// which x/crypto/ssh sends as one message unless the peer's window has less room than the
// packet; a packet cut there reaches the host's tun device as two malformed packets that the
// kernel drops, a loss TCP recovers from. sshd also charges each datagram four bytes more
// against its window than the data (channels.c channel_input_data, "string length header")
// and drops a message that overruns it ("rcvd too much data"), while x/crypto/ssh counts the
// data only: once more than sshd's window (2 MiB) has been in flight towards the host the
// two can disagree for good, sshd waiting for data and x/crypto/ssh for window. WritePacket
// then fails with ErrStalled after StallTimeout and closes the channel; the owner opens a
// new tunnel.
//
// # Host configuration
//
// The commands run on the host (host.go, through Commander) are `ls /sys/class/net`,
// `ip -o addr show`, `ip addr replace <local> peer <peer> dev tunN`, `ip link set dev tunN
// mtu M up`, `ip route replace <range> dev tunN` per range and, at Close, `ip route del` and
// `ip link del`. A range that contains one of the host's addresses, its SSH address or the
// link's pair is refused before anything is changed. sshd deletes the device when the
// channel closes (the device is not persistent), and its routes go with it; Close removes
// them explicitly all the same. The channel ends with its SSH connection: after a
// reconnect, Open a new Tunnel (the routes move to the new device with `replace`).
package tunnel
