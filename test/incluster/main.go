// Command incluster is the in-cluster client of the end-to-end tests: run in a pod, it finds
// the Kubernetes API as every in-cluster client does (client-go's rest.InClusterConfig:
// KUBERNETES_SERVICE_HOST and _PORT, the service account's token and CA), asks who it is
// (a SelfSubjectReview, which every authenticated user may make) and prints the answer.
// `incluster sockets` instead prints whether the container may open raw and packet sockets;
// `incluster get URL` prints the body of a GET of URL; `incluster resolve NAME...` the
// addresses of names; `incluster udp ADDR MSG` the answer to a datagram; `incluster
// udp-echo ADDR` echoes datagrams; `incluster netprobe ...` runs netprobe's measurements
// (internal/netprobe, for make bench).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/satellite-vk/satellite/internal/netprobe"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sockets" {
		sockets()
		return
	}
	if len(os.Args) > 1 {
		var err error
		switch a := os.Args[1:]; {
		case a[0] == "get" && len(a) == 2:
			err = get(a[1])
		case a[0] == "resolve":
			resolve(a[1:])
		case a[0] == "udp" && len(a) == 3:
			err = udp(a[1], a[2])
		case a[0] == "udp-echo" && len(a) == 2:
			err = udpEcho(a[1])
		case a[0] == "netprobe":
			err = netprobe.Main(a[1:], os.Stdout)
		default:
			err = fmt.Errorf("unknown command %q", a)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "incluster:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "incluster:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("SelfSubjectReview at %s: %w", cfg.Host, err)
	}
	fmt.Printf("api %s\nuser %s\n", cfg.Host, r.Status.UserInfo.Username)
	return nil
}
