// Package podworker runs the pods of a Satellite node on its host, as the kubelet's pod
// workers do (pod_workers.go, kuberuntime's SyncPod, pleg's relist): one worker goroutine per
// pod reconciles what the pod asks for with what the host's containerd reports, and publishes
// the pod's status.
//
// Each sync is one podSync (the pod's record, its spec, what the host showed, the sandbox
// config): admission, then observe (CRI lists and statuses), act (sandbox and volumes, init
// containers, containers, restarts with crash-loop back-off, lifecycle hooks, liveness kills),
// publishStatus. Deletion kills the pod (preStop hooks, grace periods, sidecars last) and
// removes it from the host. The relist and the runtime's event stream wake the workers, and
// collect what no pod owns any more.
//
// The worker hands each pod to the managers of the other packages through small interfaces
// declared here (images, volumes, gpu, logs, prober) and owns only its own state: the pod
// store, the workers, the crash-loop back-off. Provider (the root package) records the pods
// virtual-kubelet gives it here (Put, Delete) and reads them back (Get, List).
package podworker
