// Package doctor checks a remote host for what Satellite needs (Run: containerd with its CRI
// plugin, socket access over SSH, runc, cgroups, CNI, the sandbox image, disk, GPUs, clock),
// with a fix for every failure, and prepares the host's containerd, CNI and sshd configuration
// (Prepare). `satellite host doctor` and `satellite host prepare` are its commands.
//
// It reaches the host only through small interfaces: a Commander that runs shell commands
// (*remote.Host), and the CRI calls of Runtime (*remote.Runtime). Parsing of command output,
// the editing of containerd's config.toml and the planning of sshd's Match block are pure
// functions.
package doctor
