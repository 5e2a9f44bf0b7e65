// Package hostkey pins a host's SSH key on first use (Pinner): a host that no known_hosts line
// names is trusted once, as OpenSSH's StrictHostKeyChecking=accept-new does, and its key is
// written where every later connection reads it, so a different key is refused from then on.
// Unlike accept-new, the pin is kept in a Store that outlives the process (Satellite's is a
// Secret, in cmd/satellite), and a second pin is refused rather than overwriting the first.
//
// remote.Config takes File as ExtraKnownHosts and Pin as TrustOnFirstUse; remote calls Pin
// only for a host absent from every known_hosts file, never for a changed key.
package hostkey
