package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/satellite-vk/satellite/remote/tunnel"
)

// nameTunnel is the check of the layer-3 tunnel that gives the host's pods the cluster's
// network (docs/networking.md).
const nameTunnel = "cluster tunnel"

// checkTunnel opens the tunnel Satellite opens (tun@openssh.com, any unit) and closes it at
// once: sshd creates the device and deletes it with the channel. A refusal is a warning, not a
// failure: the node works without it, its pods have no cluster network.
func checkTunnel(ctx context.Context, h Host, o Options) Result {
	r := Result{Name: nameTunnel}
	err := tunnel.Probe(ctx, h)
	var oce *ssh.OpenChannelError
	switch {
	case errors.As(err, &oce):
		user, _, _ := splitUser(o.SSHTarget)
		return warn(r, fmt.Sprintf("sshd refuses Satellite's tunnel (%s): the host's pods get no cluster network (Services, cluster DNS)", oce.Message),
			tunnelFix(o.PrepareCommand, user))
	case err != nil:
		return warn(r, fmt.Sprintf("cannot open Satellite's tunnel: %v", err), "check that the host has /dev/net/tun (modprobe tun) and that Satellite's user is root")
	}
	return pass(r, "sshd permits Satellite's tunnel (tun@openssh.com, point-to-point): the host's pods can be on the cluster network")
}

// tunnelFix is the fix for a refused tunnel: host prepare writes the Match block, checks it
// and reloads sshd.
func tunnelFix(prepare, user string) string {
	if prepare == "" {
		prepare = "satellite host prepare"
	}
	return fmt.Sprintf("%s --reload-sshd adds, for %s only:\n  Match User %s\n    PermitTunnel point-to-point\n"+
		"in /etc/ssh/sshd_config.d/"+tunnelDropIn+" where sshd_config includes that directory, else at\n"+
		"the end of sshd_config; it checks the result with sshd -t and sshd -T and reloads sshd (--dry-run shows\n"+
		"the diff first). Then restart Satellite's pod: its open connection keeps the setting it started with", prepare, user, user)
}

// splitUser splits user@host:port into the user and the rest ("root" when none is given).
func splitUser(t string) (user, rest string, ok bool) {
	user, rest, ok = strings.Cut(t, "@")
	if !ok {
		return "root", t, false
	}
	return user, rest, true
}

// nameRanges is the check of the cluster's ranges against the host's own networks.
const nameRanges = "cluster ranges"

// checkRanges checks that none of the ranges Satellite will route into the tunnel overlaps
// the host's networks or the address Satellite connects from: Satellite would refuse the
// tunnel (RangeOverlap).
func checkRanges(ctx context.Context, h Host, o Options) Result {
	r := Result{Name: nameRanges}
	if len(o.ClusterRanges) == 0 {
		return Result{Name: nameRanges, Status: Skip, Detail: "no ranges given: --cluster-ranges takes the cluster's Service ranges and Satellite's --cluster-cidrs, to check them against the host's networks"}
	}
	var list []string
	for _, p := range o.ClusterRanges {
		list = append(list, p.String())
	}
	err := tunnel.CheckRanges(ctx, h, o.ClusterRanges, tunnel.DefaultLocal, tunnel.DefaultPeer)
	switch {
	case errors.Is(err, tunnel.ErrOverlap):
		return warn(r, fmt.Sprintf("%v: Satellite would refuse the tunnel, and the host's pods would get no cluster network", err),
			"route only ranges the host is not on: narrow --cluster-cidrs (chart clusterCIDRs) to the cluster's pod ranges, or move the host to a network outside them")
	case err != nil:
		return warn(r, fmt.Sprintf("cannot list the host's networks: %v", err), "check that the host has the ip command (iproute2)")
	}
	return pass(r, "none of "+strings.Join(list, ", ")+" overlaps the host's networks or the address Satellite connects from")
}
