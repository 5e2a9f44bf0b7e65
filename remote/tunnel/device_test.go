package tunnel

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// stuckChannel is a channel whose Write waits for window that never comes, until Close.
type stuckChannel struct {
	ssh.Channel // nil: only Write, Close and Read are used
	once        sync.Once
	closed      chan struct{}
	writes      [][]byte
}

func (c *stuckChannel) Read([]byte) (int, error) {
	<-c.closed
	return 0, io.EOF
}

func (c *stuckChannel) Write(p []byte) (int, error) {
	if len(c.writes) == 0 { // the first packet goes through
		c.writes = append(c.writes, append([]byte(nil), p...))
		return len(p), nil
	}
	<-c.closed
	return 0, io.EOF
}

func (c *stuckChannel) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func TestWritePacketStall(t *testing.T) {
	t.Parallel()
	ch := &stuckChannel{closed: make(chan struct{})}
	reqs := make(chan *ssh.Request)
	close(reqs)
	d := newDevice(ch, reqs)
	d.stall = 50 * time.Millisecond
	defer d.Close()

	if err := d.WritePacket(ipv4(20)); err != nil {
		t.Fatal(err)
	}
	if string(ch.writes[0]) != string(frame(AFInet, ipv4(20))) {
		t.Errorf("wrote % x, want one frame", ch.writes[0])
	}
	if err := d.WritePacket(ipv4(20)); !errors.Is(err, ErrStalled) {
		t.Fatalf("a write that never got window: %v, want ErrStalled", err)
	}
	if _, err := d.ReadPacket(make([]byte, 100)); !errors.Is(err, io.EOF) {
		t.Errorf("read after the stall: %v, want EOF (the channel is closed)", err)
	}
}
