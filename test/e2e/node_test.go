package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/satellite-vk/satellite/cloud/ec2"
	"github.com/satellite-vk/satellite/provider/gpu"
	"github.com/satellite-vk/satellite/test/ec2stub"
)

// nodeListen is the kubelet API of the node test's Satellite.
const nodeListen = "10.213.0.1:10364"

// The node as `kubectl describe node` shows it. The lab host (a containerd of its own, a
// stand-in nvidia-smi printing two A100s) is an EC2 instance found by ID, and its Satellite
// names the node after an ENI it creates, both through the real SDK client against a
// stand-in of the EC2 query API (--ec2-endpoint). The node has the fargate name, the test
// host's real capacity (read here independently of Satellite), allocatable less
// --system-reserved and --kube-reserved, the instance's type and zone as labels, GPU labels
// and the taint. A restart finds the same ENI (one ENI, same name). Then the host loses a
// GPU: nvidia.com/gpu drops to 1, with a GPULost event naming the device.
func TestIntegrationNodeDescribe(t *testing.T) {
	e := loadEnv(t)
	ns := e.namespace(t)
	const (
		region   = "us-east-1"
		subnet   = "subnet-0a7700000000000a7"
		vpc      = "vpc-0a7700000000000a7"
		group    = "sg-0a7700000000000a7"
		instance = "i-0a7700000000000a7"
	)
	stub := ec2stub.New(t)
	stub.Region = region
	stub.AddSubnet(subnet, vpc, "us-east-1b", "10.0.77.0/24")
	stub.AddSecurityGroup(group, vpc)
	_, hostAddr, _ := strings.Cut(e.get(t, "HOST_SSH"), "@")
	hostIP, _, err := net.SplitHostPort(hostAddr)
	if err != nil {
		t.Fatal(err)
	}
	stub.SetInstance(ec2stub.Instance{ID: instance, State: "running", PrivateIP: hostIP, Type: "p4d.24xlarge", Zone: "us-east-1b"})

	// Until the ENI names it, the node's name is one no node has (cleanup ignores it).
	l := newGPULab(t, e, "satellite-node-"+ns[len(ns)-6:])
	l.eniNamed = true
	l.env = []string{"AWS_ACCESS_KEY_ID=AKIASATELLITETEST", "AWS_SECRET_ACCESS_KEY=not-a-secret", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	l.args = []string{"--listen-address", nodeListen, "--region", region, "--ec2-endpoint", stub.URL,
		"--eni-subnet", subnet, "--eni-security-groups", group, "--host-instance-id", instance, "--host-address-type", "private",
		"--system-reserved", "cpu=500m,memory=512Mi", "--kube-reserved", "memory=256Mi,ephemeral-storage=1Gi",
		"--node-labels", "team=vision"}
	l.startSatellite()
	var enis []ec2stub.ENI
	e.waitFor(t, 30*time.Second, "Satellite to create the node's ENI", func(context.Context) (bool, error) {
		enis = stub.ENIs()
		return len(enis) == 1, nil
	})
	if l.node, err = ec2.FargateNodeName(enis[0].PrivateIP, region); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^fargate-ip-10-0-77-\d+\.ec2\.internal$`).MatchString(l.node) {
		t.Errorf("node name %q: want fargate-ip-10-0-77-<n>.ec2.internal, from the ENI's address in us-east-1", l.node)
	}
	l.waitGPUNode()

	// What the host really has, read here without Satellite.
	cpus := int64(runtime.NumCPU())
	memKiB := meminfoKiB(t, "MemTotal")
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(l.dir, "root"), &st); err != nil {
		t.Fatal(err)
	}
	diskKiB := int64(st.Blocks) * st.Frsize / 1024

	out := e.mustKubectl(t, "", "describe", "node", l.node)
	t.Logf("kubectl describe node:\n%s", out)
	if m := regexp.MustCompile(`(?m)^Name:\s+(\S+)$`).FindStringSubmatch(out); m == nil || m[1] != l.node {
		t.Errorf("describe shows name %q, want %s", m, l.node)
	}
	// Taints: one per line, the first beside the heading. The node controller may still hold
	// its node.kubernetes.io/not-ready taint from the registration for a moment.
	if taints := describeList(out, "Taints"); !slices.Contains(taints, "virtual-kubelet.io/provider=satellite:NoSchedule") {
		t.Errorf("describe shows taints %q, want virtual-kubelet.io/provider=satellite:NoSchedule among them", taints)
	}
	kib := func(n int64) string { return strconv.FormatInt(n, 10) + "Ki" }
	for section, want := range map[string]map[string]string{
		"Capacity": {"cpu": strconv.FormatInt(cpus, 10), "memory": kib(memKiB), "ephemeral-storage": kib(diskKiB),
			"nvidia.com/gpu": "2", "pods": "110"},
		"Allocatable": {"cpu": strconv.FormatInt(cpus*1000-500, 10) + "m", "memory": kib(memKiB - 768*1024),
			"ephemeral-storage": kib(diskKiB - 1024*1024), "nvidia.com/gpu": "2", "pods": "110"},
	} {
		got := describeSection(out, section)
		for name, w := range want {
			g, ok := got[name]
			if !ok {
				t.Errorf("%s: no %s", section, name)
				continue
			}
			if gq, err := resource.ParseQuantity(g); err != nil || gq.Cmp(resource.MustParse(w)) != 0 {
				t.Errorf("%s: %s %s, want %s", section, name, g, w)
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	info := describeSection(out, "System Info")
	for name, want := range map[string]string{"Kernel Version": strings.TrimSpace(string(kernel)), "Boot ID": strings.TrimSpace(string(bootID)),
		"Operating System": "linux", "Architecture": runtime.GOARCH} {
		if info[name] != want {
			t.Errorf("System Info: %s %q, want %q", name, info[name], want)
		}
	}
	if v := info["Container Runtime Version"]; !strings.HasPrefix(v, "containerd://2.") {
		t.Errorf("System Info: Container Runtime Version %q, want the lab's containerd://2.x", v)
	}

	node, err := e.client.CoreV1().Nodes().Get(context.Background(), l.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"node.kubernetes.io/instance-type": "p4d.24xlarge", "topology.kubernetes.io/zone": "us-east-1b",
		"topology.kubernetes.io/region": region, "satellite.dev/host-provider": "aws",
		"type": "virtual-kubelet", "eks.amazonaws.com/compute-type": "fargate", "team": "vision",
		"nvidia.com/gpu.count": "2", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.memory": "81920",
		"k8s.amazonaws.com/accelerator": "nvidia-a100-sxm4-80gb", "kubernetes.io/hostname": l.node,
	} {
		if got := node.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	// A restart finds the ENI it made: no second one, the same name.
	describes := len(stub.Requests("DescribeNetworkInterfaces"))
	l.stopSatellite()
	logged := l.logSize()
	l.startSatellite()
	e.waitFor(t, 30*time.Second, "the restarted Satellite to look its ENI up", func(context.Context) (bool, error) {
		return len(stub.Requests("DescribeNetworkInterfaces")) > describes, nil
	})
	// The restarted Satellite registers its node once it has read the host's facts: from then
	// on, a GPU gone is a change it sees. (The node object alone cannot tell: it shows the
	// stopped Satellite's status until the new one's first update.)
	l.waitLogged(logged, `msg="node is registered"`, 60*time.Second)
	l.waitGPUNode()
	if got, creates := stub.ENIs(), len(stub.Requests("CreateNetworkInterface")); len(got) != 1 || got[0].ID != enis[0].ID || creates != 1 {
		t.Errorf("after a restart: ENIs %+v after %d CreateNetworkInterface calls; want only %s, created once", got, creates, enis[0].ID)
	}

	// The host loses its second GPU.
	lost := strings.SplitAfter(gpuSMIOutput, "\n")[1]
	lostUUID := strings.TrimSpace(strings.Split(lost, ",")[1])
	l.write("bin/nvidia-smi", smiScript(strings.SplitAfter(gpuSMIOutput, "\n")[0]), 0o755)
	lostAt := time.Now()
	e.waitFor(t, 150*time.Second, "node "+l.node+" to lose a GPU", func(ctx context.Context) (bool, error) {
		n, err := e.client.CoreV1().Nodes().Get(ctx, l.node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c, a := n.Status.Capacity[gpu.ResourceName], n.Status.Allocatable[gpu.ResourceName]
		return c.Value() == 1 && a.Value() == 1 && n.Labels["nvidia.com/gpu.count"] == "1", nil
	})
	t.Logf("nvidia.com/gpu 2 -> 1 in %s after nvidia-smi stopped listing %s", time.Since(lostAt).Round(time.Second), lostUUID)
	var ev corev1.Event
	e.waitFor(t, 30*time.Second, "a GPULost event of node "+l.node, func(ctx context.Context) (bool, error) {
		evs, err := e.client.CoreV1().Events("").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + l.node + ",reason=GPULost"})
		if err != nil || len(evs.Items) == 0 {
			return false, err
		}
		ev = evs.Items[0]
		return true, nil
	})
	t.Logf("node event: %s", describeEvent(ev))
	if want := fmt.Sprintf("GPU 1 (%s, NVIDIA A100-SXM4-80GB) is no longer reported by nvidia-smi on the host: nvidia.com/gpu is now 1", lostUUID); ev.Type != corev1.EventTypeWarning || ev.Message != want {
		t.Errorf("GPULost event %s, want Warning %q", describeEvent(ev), want)
	}
}

// smiScript is a stand-in nvidia-smi that prints output for Satellite's query.
func smiScript(output string) string {
	return "#!/bin/sh\n" +
		`if [ "$*" = "--query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits" ]; then` + "\n" +
		"cat <<'EOF'\n" + output + "EOF\nexit 0\nfi\n" +
		`echo "fake nvidia-smi: unsupported arguments: $*" >&2` + "\nexit 2\n"
}

// describeList reads a heading of kubectl describe's output whose values are one a line, the
// first beside the heading ("Taints:  a\n          b").
func describeList(out, heading string) []string {
	var vals []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, heading+":"):
			in = true
			vals = append(vals, strings.TrimSpace(strings.TrimPrefix(line, heading+":")))
		case in && strings.HasPrefix(line, " ") && !strings.Contains(line, ":  "):
			vals = append(vals, strings.TrimSpace(line))
		case in:
			return vals
		}
	}
	return vals
}

// describeSection reads the "  name:  value" lines of a section of kubectl describe's output.
func describeSection(out, section string) map[string]string {
	got := map[string]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == section+":":
			in = true
		case in && strings.HasPrefix(line, " "):
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok {
				got[k] = strings.TrimSpace(v)
			}
		case in:
			return got
		}
	}
	return got
}

// meminfoKiB is a /proc/meminfo figure of this machine (the host's namespace shares it).
func meminfoKiB(t *testing.T, key string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key+":" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/meminfo", key)
	return 0
}
