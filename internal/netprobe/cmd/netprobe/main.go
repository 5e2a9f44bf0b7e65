// Command netprobe runs netprobe's measurements from a test's network namespace and prints
// the result on one line.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/satellite-vk/satellite/internal/netprobe"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "netprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "", "address to connect to")
	listen := flag.String("listen", "", "address to serve on instead")
	mode := flag.String("mode", "", "source, sink, echo (serving); source, sink, rtt, udp (connecting)")
	n := flag.Int64("n", 0, "bytes to send (source) or round trips (rtt)")
	flag.Parse()
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		fmt.Println("listening")
		return netprobe.Serve(ln, netprobe.Mode(*mode), *n)
	}
	network := "tcp"
	if *mode == "udp" {
		network = "udp"
	}
	c, err := net.DialTimeout(network, *addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return probe(c, *mode, *n)
}

func probe(c net.Conn, mode string, n int64) error {
	switch mode {
	case "source":
		d, err := netprobe.Send(c, n)
		if err != nil {
			return err
		}
		fmt.Println(n, d.Nanoseconds())
	case "sink":
		got, d, err := netprobe.Receive(c)
		if err != nil {
			return err
		}
		fmt.Println(got, d.Nanoseconds())
	case "rtt":
		rtts, err := netprobe.RoundTrips(c, int(n), 64)
		if err != nil {
			return err
		}
		fmt.Println(netprobe.Percentile(rtts, 50).Nanoseconds(), netprobe.Percentile(rtts, 99).Nanoseconds())
	case "udp":
		reply, err := netprobe.UDPEcho(c, []byte("satellite udp probe"), 5*time.Second)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", reply)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}
