package main

import (
	"fmt"
	"syscall"
)

// sockets tries the two sockets CAP_NET_RAW guards, a raw IPv4 socket and a packet socket,
// and prints what each gave: "raw=ok packet=ok", or the errno's text.
func sockets() {
	try := func(domain, typ, proto int) string {
		fd, err := syscall.Socket(domain, typ, proto)
		if err != nil {
			return err.Error()
		}
		syscall.Close(fd)
		return "ok"
	}
	raw := try(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	// ETH_P_ALL, in network byte order: every frame of every interface.
	packet := try(syscall.AF_PACKET, syscall.SOCK_RAW, 0x0300)
	fmt.Printf("raw=%s packet=%s\n", raw, packet)
}
