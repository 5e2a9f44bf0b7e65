package remote

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
)

// OpenChannel opens a channel of the given type (such as tun@openssh.com) on the current
// connection, dialing one if there is none. The channel ends with that connection: after a
// reconnect the caller opens a new one. Cancelling ctx while sshd has not answered closes
// the channel once it is opened.
func (h *Host) OpenChannel(ctx context.Context, name string, payload []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	c, err := h.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	type opened struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	res := make(chan opened)
	abandoned := make(chan struct{})
	h.wg.Add(1) // Close waits for it; it ends when sshd answers or the connection drops
	go func() {
		defer h.wg.Done()
		ch, reqs, err := c.OpenChannel(name, payload)
		select {
		case res <- opened{ch, reqs, err}:
		case <-abandoned:
			if err == nil {
				_ = ch.Close()
				ssh.DiscardRequests(reqs)
			}
		}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, nil, fmt.Errorf("ssh %s: open channel %s: %w", h.cfg.Addr, name, r.err)
		}
		h.channels.Add(1)
		return &countedChannel{Channel: r.ch, h: h}, r.reqs, nil
	case <-ctx.Done():
		close(abandoned)
		return nil, nil, fmt.Errorf("ssh %s: open channel %s: %w", h.cfg.Addr, name, ctx.Err())
	}
}

// countedChannel is a channel that leaves Stats' count when it is closed.
type countedChannel struct {
	ssh.Channel
	h    *Host
	once sync.Once
}

// Unwrap is the x/crypto/ssh channel; remote/tunnel reaches its window through it.
func (c *countedChannel) Unwrap() ssh.Channel { return c.Channel }

func (c *countedChannel) Close() error {
	c.once.Do(func() { c.h.channels.Add(-1) })
	return c.Channel.Close()
}
