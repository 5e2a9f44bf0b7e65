package netprobe

import (
	"flag"
	"fmt"
	"io"
	"net"
	"time"
)

// Main runs netprobe's command line (cmd/netprobe, and `incluster netprobe` in a pod): with
// -listen it serves one mode, else it makes one measurement towards -addr and prints it on
// one line: "bytes nanoseconds" (source, sink) or "p50 p99" in nanoseconds (rtt, http-rtt).
func Main(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("netprobe", flag.ContinueOnError)
	addr := fs.String("addr", "", "address to connect to")
	listen := fs.String("listen", "", "address to serve on instead")
	mode := fs.String("mode", "", "source, sink, echo, http (serving); source, sink, rtt, http-rtt, udp (connecting)")
	n := fs.Int64("n", 0, "bytes to send (source) or round trips (rtt, http-rtt)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "listening")
		if *mode == "http" {
			return ServeHTTP(ln)
		}
		return Serve(ln, Mode(*mode), *n)
	}
	if *mode == "http-rtt" {
		rtts, err := HTTPRoundTrips(net.Dial, "http://"+*addr+"/", int(*n))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, Percentile(rtts, 50).Nanoseconds(), Percentile(rtts, 99).Nanoseconds())
		return nil
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
	return probe(c, stdout, *mode, *n)
}

func probe(c net.Conn, stdout io.Writer, mode string, n int64) error {
	switch mode {
	case "source":
		d, err := Send(c, n)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, n, d.Nanoseconds())
	case "sink":
		got, d, err := Receive(c)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, got, d.Nanoseconds())
	case "rtt":
		rtts, err := RoundTrips(c, int(n), 64)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, Percentile(rtts, 50).Nanoseconds(), Percentile(rtts, 99).Nanoseconds())
	case "udp":
		reply, err := UDPEcho(c, []byte("satellite udp probe"), 5*time.Second)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", reply)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}
