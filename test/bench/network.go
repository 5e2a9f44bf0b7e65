package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/satellite-vk/satellite/internal/netprobe"
)

// The server pods' ports: a sink, a source and an HTTP server (internal/netprobe).
const (
	portSink   = 7001
	portSource = 7002
	portHTTP   = 7003
)

// netTable is the network figures: one column per path.
type netTable struct {
	rows []string
	cell map[string][3]string
}

const (
	colSatellite = iota
	colKubelet
	colPlain
)

func (t *netTable) set(row string, col int, v string) {
	if t.cell == nil {
		t.cell = map[string][3]string{}
	}
	c, ok := t.cell[row]
	if !ok {
		t.rows = append(t.rows, row)
	}
	c[col] = v
	t.cell[row] = c
}

func (t *netTable) print() {
	fmt.Printf("\n%-58s | %-22s | %-22s | %-22s\n", "network figure", "Satellite", "kubelet pod to pod", "plain SSH direct-tcpip")
	fmt.Println(strings.Repeat("-", 134))
	for _, r := range t.rows {
		c := t.cell[r]
		fmt.Printf("%-58s | %-22s | %-22s | %-22s\n", r, c[0], c[1], c[2])
	}
	fmt.Println("\nratios (Satellite / plain SSH channel; for round trips, the difference):")
	for _, r := range t.rows {
		c := t.cell[r]
		var s, p float64
		if _, err := fmt.Sscanf(c[colSatellite], "%f", &s); err != nil {
			continue
		}
		if _, err := fmt.Sscanf(c[colPlain], "%f", &p); err != nil || p == 0 {
			continue
		}
		if strings.Contains(r, "MiB/s") {
			fmt.Printf("  %-58s %.2f\n", r, s/p)
		} else {
			fmt.Printf("  %-58s %+.2f ms (p50)\n", r, s-p)
		}
	}
}

// network measures the pods' network: a server pod on the Satellite node and one on the
// reference node (a sink, a source and an HTTP server each), and client pods that stream
// mb MiB each way and make small HTTP requests. The Satellite column is a pod on the
// Satellite node with a reference pod at the other end: the relays carry the connections
// the reference pod opens, the tunnel those the Satellite pod opens. The kubelet column is
// two pods on the reference node. The plain column is one SSH direct-tcpip channel from
// here to the same server on the host, on the link Satellite uses (sshAddr).
func network(ctx context.Context, e env, p *pods, sat, ref node, prefix, sshAddr, knownHosts string, mb int, kubelet bool, t *netTable) error {
	size := int64(mb) << 20
	satIP, err := p.nodeIP(ctx, sat.name)
	if err != nil {
		return err
	}
	defer p.deleteNetServers(ctx)
	if err := p.netServer(ctx, "netsrv-sat", sat, size); err != nil {
		return err
	}
	refIP, err := p.netServerIP(ctx, "netsrv-ref", ref, size)
	if err != nil {
		return err
	}
	fig := func(row string, col int, client node, addr string, mode string, n int64) error {
		out, err := p.netClient(ctx, client, addr, mode, n)
		if err != nil {
			return fmt.Errorf("%s: %w", row, err)
		}
		t.set(prefix+row, col, out)
		return nil
	}
	satAddr := func(port int) string { return net.JoinHostPort(satIP, strconv.Itoa(port)) }
	refAddr := func(port int) string { return net.JoinHostPort(refIP, strconv.Itoa(port)) }
	rows := netRows(mb, size, sat, ref, satAddr, refAddr)
	plain, err := dialSSH(sshAddr, e["HOST_SSH_KEY"], knownHosts)
	if err != nil {
		return err
	}
	defer plain.Close()
	for _, r := range rows {
		log("network: %s%s", prefix, r.row)
		if err := fig(r.row, colSatellite, r.satClient, r.satAddr, r.mode, r.n); err != nil {
			return err
		}
		if kubelet {
			if err := fig(r.row, colKubelet, ref, refAddr(map[string]int{"source": portSink, "sink": portSource, "http-rtt": portHTTP}[r.mode]), r.mode, r.n); err != nil {
				return err
			}
		}
		v, err := plainFigure(plain, r.plainPort, r.plainSending, size)
		if err != nil {
			return fmt.Errorf("%s over a plain SSH channel: %w", r.row, err)
		}
		t.set(prefix+r.row, colPlain, v)
	}
	return nil
}

// netRow is one figure: the Satellite column's client and address, and the plain channel's
// port and direction.
type netRow struct {
	row          string
	satClient    node
	satAddr      string
	mode         string
	n            int64
	plainPort    int
	plainSending bool
}

func netRows(mb int, size int64, sat, ref node, satAddr, refAddr func(int) string) []netRow {
	return []netRow{
		{fmt.Sprintf("%d MiB into a Satellite pod, it dialled (MiB/s)", mb), ref, satAddr(portSink), "source", size, portSink, true},
		{fmt.Sprintf("%d MiB out of a Satellite pod, it dialled (MiB/s)", mb), ref, satAddr(portSource), "sink", size, portSource, false},
		{fmt.Sprintf("%d MiB out of a Satellite pod, it dialling (MiB/s)", mb), sat, refAddr(portSink), "source", size, portSource, false},
		{fmt.Sprintf("%d MiB into a Satellite pod, it dialling (MiB/s)", mb), sat, refAddr(portSource), "sink", size, portSink, true},
		{"HTTP GET p50 / p99, Satellite pod serving (ms)", ref, satAddr(portHTTP), "http-rtt", 300, portHTTP, false},
		{"HTTP GET p50 / p99, Satellite pod asking (ms)", sat, refAddr(portHTTP), "http-rtt", 300, portHTTP, false},
	}
}

// plainFigure measures over one direct-tcpip channel to the Satellite server pod's port on
// the host (it listens on every address of the host's network namespace).
func plainFigure(c *ssh.Client, port int, sending bool, size int64) (string, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if port == portHTTP {
		rtts, err := netprobe.HTTPRoundTrips(c.Dial, "http://"+addr+"/", 300)
		if err != nil {
			return "", err
		}
		return millis(netprobe.Percentile(rtts, 50), netprobe.Percentile(rtts, 99)), nil
	}
	conn, err := c.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if sending {
		d, err := netprobe.Send(conn, size)
		if err != nil {
			return "", err
		}
		return mibs(size, d), nil
	}
	n, d, err := netprobe.Receive(conn)
	if err != nil || n != size {
		return "", fmt.Errorf("received %d of %d bytes: %v", n, size, err)
	}
	return mibs(n, d), nil
}

func mibs(n int64, d time.Duration) string {
	return fmt.Sprintf("%.1f (%.1f s)", float64(n)/(1<<20)/d.Seconds(), d.Seconds())
}

func millis(p50, p99 time.Duration) string {
	return fmt.Sprintf("%.2f / %.2f", float64(p50)/float64(time.Millisecond), float64(p99)/float64(time.Millisecond))
}

func dialSSH(addr, keyFile, knownHostsFile string) (*ssh.Client, error) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	hk, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, Timeout: 10 * time.Second})
}

func (p *pods) nodeIP(ctx context.Context, name string) (string, error) {
	n, err := p.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address, nil
		}
	}
	return "", fmt.Errorf("node %s has no InternalIP", name)
}

// netServer runs a server pod on n, if it is not running yet, and waits until it is ready.
func (p *pods) netServer(ctx context.Context, name string, n node, size int64) error {
	_, err := p.netServerIP(ctx, name, n, size)
	return err
}

func (p *pods) netServerIP(ctx context.Context, name string, n node, size int64) (string, error) {
	if _, err := p.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		pod := p.netPod(name, n, corev1.RestartPolicyAlways)
		pod.Spec.Containers = nil
		for _, s := range []struct {
			mode string
			port int
		}{{"sink", portSink}, {"source", portSource}, {"http", portHTTP}} {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
				Name: s.mode, Image: p.e["INCLUSTER_IMAGE"],
				Args:  []string{"netprobe", "-listen", ":" + strconv.Itoa(s.port), "-mode", s.mode, "-n", strconv.FormatInt(size, 10)},
				Ports: []corev1.ContainerPort{{ContainerPort: int32(s.port)}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1,
					ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(s.port))}}},
			})
		}
		if _, err := p.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return "", err
		}
	}
	var ip string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pod, err := p.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ip = pod.Status.PodIP
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("server pod %s ready: %w", name, err)
	}
	return ip, nil
}

// deleteNetServers deletes the server pods and waits until they are gone, so that the ports
// and the pod slots are free for what follows.
func (p *pods) deleteNetServers(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, name := range []string{"netsrv-sat", "netsrv-ref"} {
		_ = p.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := p.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, pod := range l.Items {
			if strings.HasPrefix(pod.Name, "netsrv-") {
				return false, nil
			}
		}
		return true, nil
	})
}

func (p *pods) netPod(name string, n node, policy corev1.RestartPolicy) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:                      n.name,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// netClient runs one netprobe measurement in a pod on n and returns its figure.
func (p *pods) netClient(ctx context.Context, n node, addr, mode string, size int64) (string, error) {
	name := fmt.Sprintf("netcli-%d", time.Now().UnixNano())
	pod := p.netPod(name, n, corev1.RestartPolicyNever)
	pod.Spec.Containers = []corev1.Container{{Name: "main", Image: p.e["INCLUSTER_IMAGE"],
		Args: []string{"netprobe", "-addr", addr, "-mode", mode, "-n", strconv.FormatInt(size, 10)}}}
	if _, err := p.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	defer func() {
		_ = p.client.CoreV1().Pods(ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
	}()
	var phase corev1.PodPhase
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := p.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	logs, lerr := p.client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || phase != corev1.PodSucceeded || lerr != nil {
		return "", fmt.Errorf("client pod %s (%s %s on %s): phase %s, %v, %v: %s", name, mode, addr, n.label, phase, err, lerr, logs)
	}
	var a, b int64
	if _, err := fmt.Sscanf(string(logs), "%d %d", &a, &b); err != nil {
		return "", fmt.Errorf("client pod %s printed %q", name, logs)
	}
	if mode == "http-rtt" {
		return millis(time.Duration(a), time.Duration(b)), nil
	}
	if a != size {
		return "", fmt.Errorf("client pod %s moved %d bytes", name, a)
	}
	return mibs(a, time.Duration(b)), nil
}
