// Package gpu is Satellite's device manager for NVIDIA GPUs, as the kubelet's
// cm/devicemanager is for device plugins: it reads the host's GPUs from nvidia-smi (with
// the host facts the node status reads), decides how containers are given them (CDI names or
// NVIDIA_VISIBLE_DEVICES, --gpu-mode), allocates devices to containers under one lock, and
// chooses the CRI runtime handler of a pod's sandbox (RuntimeClass or the NVIDIA runtime).
//
// The node status (package nodestatus) runs FactsCommand's fragment with the host facts,
// hands the result to Manager.Observe and advertises Manager.Devices as nvidia.com/gpu with
// Labels; the pod worker calls Manager.Assign before each CreateContainer and
// Manager.RuntimeHandler before each RunPodSandbox. An allocation is recorded only on the
// container it was made for (Annotation), so a restarted Satellite reads it back from the
// host; nothing of it is kept per pod here.
//
// Parsing nvidia-smi and containerd's configuration is pure and tested table-driven.
package gpu
