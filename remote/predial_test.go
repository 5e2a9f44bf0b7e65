package remote

import (
	"net"
	"testing"
)

// closeCounter is a connection that counts its Close calls.
type closeCounter struct {
	net.Conn
	closes int
}

func (c *closeCounter) Close() error { c.closes++; return nil }

func dialed(addr string, c net.Conn) *Predialed {
	p := &Predialed{addr: addr, done: make(chan struct{}), conn: c}
	close(p.done)
	return p
}

func TestPredialedTakenOnlyForItsAddress(t *testing.T) {
	t.Parallel()
	c := &closeCounter{}
	p := dialed("127.0.0.1:4000", c)
	if got := p.take("127.0.0.1:4001"); got != nil {
		t.Fatal("a connection to 127.0.0.1:4000 was handed over for 127.0.0.1:4001")
	}
	if got := p.take("127.0.0.1:4000"); got != c {
		t.Fatalf("take = %v, want the predialed connection", got)
	}
	if got := p.take("127.0.0.1:4000"); got != nil {
		t.Fatal("the connection was handed over twice")
	}
	p.Close()
	if c.closes != 0 {
		t.Errorf("Close closed a connection that was taken (%d closes): its session owns it", c.closes)
	}
}

func TestPredialedClosedUnlessTaken(t *testing.T) {
	t.Parallel()
	c := &closeCounter{}
	p := dialed("127.0.0.1:4000", c)
	_ = p.take("10.0.0.1:4000")
	p.Close()
	p.Close()
	if c.closes != 1 {
		t.Errorf("%d closes of a connection no session took, want 1", c.closes)
	}
	var none *Predialed
	none.Close()
	if none.take("127.0.0.1:4000") != nil {
		t.Error("a nil Predialed handed over a connection")
	}
}
