// Command netprobe runs netprobe's measurements from a test's network namespace and prints
// the result on one line (netprobe.Main).
package main

import (
	"fmt"
	"os"

	"github.com/satellite-vk/satellite/internal/netprobe"
)

func main() {
	if err := netprobe.Main(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "netprobe:", err)
		os.Exit(1)
	}
}
