package netprobe

import (
	"io"
	"net"
	"sync"
	"time"
)

// Relay forwards TCP connections to target, holding every chunk delay before passing it on,
// in both directions, in order.
type Relay struct {
	l      net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup
}

// NewRelay listens on loopback and relays to target until Close.
func NewRelay(target string, delay time.Duration) (*Relay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{l: l, target: target, delay: delay}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Port is the relay's port on 127.0.0.1.
func (r *Relay) Port() int { return r.l.Addr().(*net.TCPAddr).Port }

// Close stops the relay and waits for its connections to end.
func (r *Relay) Close() {
	_ = r.l.Close()
	r.wg.Wait()
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.pipe(up, c) }()
		go func() { defer r.wg.Done(); r.pipe(c, up) }()
	}
}

type delayed struct {
	due  time.Time
	data []byte
}

// pipe copies src to dst, each chunk delay late.
func (r *Relay) pipe(dst, src net.Conn) {
	q := make(chan delayed, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- delayed{due: time.Now().Add(r.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			break
		}
	}
	close(q)
	<-done
	_ = src.Close()
}
