package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
)

// resolve prints each name's addresses as the pod's resolver finds them (Go's, which follows
// resolv.conf's search domains and ndots as glibc does), sorted, or the error.
func resolve(names []string) {
	r := &net.Resolver{PreferGo: true}
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err := r.LookupHost(ctx, n)
		cancel()
		if err != nil {
			fmt.Printf("%s: error\n", n)
			continue
		}
		sort.Strings(addrs)
		fmt.Printf("%s: %s\n", n, strings.Join(addrs, " "))
	}
}

// udp sends msg to addr and prints the first answer, within 3 s.
func udp(addr, msg string) error {
	c, err := net.DialTimeout("udp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", buf[:n])
	return nil
}

// udpEcho answers every datagram on addr with "echo:" and the datagram, for ever.
func udpEcho(addr string) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		_, _ = c.WriteTo(append([]byte("echo:"), buf[:n]...), from)
	}
}
