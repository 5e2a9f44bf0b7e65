package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// drainOptions are the flags of `satellite drain`.
type drainOptions struct {
	kubeconfig string
	nodeName   string
	selector   string // instead of nodeName: the labels of the one node to drain
	deployment string // namespace/name of the Satellite's own Deployment, scaled to 0
	deleteNode bool
	timeout    time.Duration
}

// newDrainCommand is `satellite drain`: the chart's pre-delete hook runs it so that `helm
// uninstall` leaves neither a node nor a container behind. It cordons the node, deletes the
// pods bound to it and waits while the still-running Satellite stops their containers and
// removes their files on the host, then stops that Satellite and deletes the node (a running
// Satellite would register it again).
func newDrainCommand(getenv func(string) string) *cobra.Command {
	var o drainOptions
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Remove a Satellite node cleanly: cordon it, delete its pods, stop its Satellite, delete the node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), getenv); err != nil {
				return err
			}
			if (o.nodeName == "") == (o.selector == "") {
				return errors.New("--node-name or --node-selector is required")
			}
			client, err := kubeClient(o.kubeconfig, new(atomic.Int64))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			if o.selector != "" {
				if o.nodeName, err = nodeBySelector(ctx, client, o.selector); err != nil {
					return err
				}
			}
			return drain(ctx, client, o, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty: the in-cluster service account")
	fs.StringVar(&o.nodeName, "node-name", "", "the Satellite node to drain")
	fs.StringVar(&o.selector, "node-selector", "", "instead of --node-name: the labels of the one node to drain, for a node whose name Satellite found at start (from its ENI); no such node: nothing to drain")
	fs.StringVar(&o.deployment, "stop-deployment", "", "namespace/name of the node's Satellite Deployment, scaled to 0 once the pods are gone")
	fs.BoolVar(&o.deleteNode, "delete-node", false, "delete the node at the end")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func drain(ctx context.Context, client kubernetes.Interface, o drainOptions, out io.Writer) error {
	nodes := client.CoreV1().Nodes()
	var err error
	if o.nodeName != "" {
		_, err = nodes.Patch(ctx, o.nodeName, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	}
	switch {
	case o.nodeName == "":
		fmt.Fprintf(out, "no node has the labels %s\n", o.selector)
	case apierrors.IsNotFound(err):
		fmt.Fprintf(out, "node %s does not exist\n", o.nodeName)
	case err != nil:
		return fmt.Errorf("cordon node %s: %w", o.nodeName, err)
	default:
		fmt.Fprintf(out, "node %s cordoned\n", o.nodeName)
		onNode := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", o.nodeName).String()}
		if err := deleteAndWait(ctx, client, "", onNode, out); err != nil {
			return fmt.Errorf("pods of node %s: %w", o.nodeName, err)
		}
	}
	if o.deployment != "" {
		ns, name, ok := strings.Cut(o.deployment, "/")
		if !ok {
			return fmt.Errorf("--stop-deployment %q: want namespace/name", o.deployment)
		}
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("deployment %s: %w", o.deployment, err)
		}
		if _, err := client.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("scale deployment %s to 0: %w", o.deployment, err)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return fmt.Errorf("deployment %s: %w", o.deployment, err)
		}
		if err := waitGone(ctx, client, ns, metav1.ListOptions{LabelSelector: sel.String()}); err != nil {
			return fmt.Errorf("satellite of deployment %s: %w", o.deployment, err)
		}
		fmt.Fprintf(out, "satellite %s stopped\n", o.deployment)
	}
	if o.deleteNode && o.nodeName != "" {
		if err := nodes.Delete(ctx, o.nodeName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete node %s: %w", o.nodeName, err)
		}
		fmt.Fprintf(out, "node %s deleted\n", o.nodeName)
	}
	return nil
}

// nodeBySelector is the name of the one node with the labels, "" when there is none.
func nodeBySelector(ctx context.Context, client kubernetes.Interface, selector string) (string, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", fmt.Errorf("nodes with labels %s: %w", selector, err)
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	switch len(names) {
	case 0:
		return "", nil
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("%d nodes have the labels %s (%s): drain one by --node-name", len(names), selector, strings.Join(names, ", "))
}

// deleteAndWait deletes the pods opts selects, each with its own grace period, and waits until
// they are gone.
func deleteAndWait(ctx context.Context, client kubernetes.Interface, ns string, opts metav1.ListOptions, out io.Writer) error {
	pods, err := client.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		fmt.Fprintf(out, "pod %s/%s deleted\n", p.Namespace, p.Name)
	}
	return waitGone(ctx, client, ns, opts)
}

func waitGone(ctx context.Context, client kubernetes.Interface, ns string, opts metav1.ListOptions) error {
	for {
		pods, err := client.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pod(s) still there, %s among them: %w", len(pods.Items), pods.Items[0].Name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
