package remote

import (
	"time"
)

// keepalive closes c when the host stops answering keepalive requests.
func (h *Host) keepalive(c *conn) {
	t := time.NewTicker(h.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := h.sendKeepalive(c)
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err != nil {
				_ = c.Close()
			}
		case <-time.After(h.cfg.KeepaliveInterval):
			_ = c.Close()
			<-reply // SendRequest returns once the connection is closed
		}
	}
}

// sendKeepalive sends a keepalive@openssh.com request (OpenSSH's ServerAliveInterval probe,
// which sshd answers with a failure reply) and delivers its error on the returned channel once
// the reply came or the connection ended, recording the round trip of an answered one. The
// goroutine ends with the reply: SendRequest returns once the connection is closed.
func (h *Host) sendKeepalive(c *conn) <-chan error {
	reply := make(chan error, 1)
	go func() {
		start := time.Now()
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		if err == nil {
			rtt := time.Since(start)
			h.rtt.Store(int64(rtt))
			if h.cfg.RoundTrip != nil {
				h.cfg.RoundTrip(rtt)
			}
		}
		reply <- err
	}()
	return reply
}
