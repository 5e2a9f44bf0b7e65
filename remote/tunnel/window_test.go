package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// pipeChannel opens a tun@openssh.com channel between an x/crypto/ssh client and server
// in this process, over loopback; the server's end is returned for the test to read.
func pipeChannel(t *testing.T) (client, server ssh.Channel) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan ssh.Channel, 1)
	go func() {
		c2, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		_, chans, reqs, err := ssh.NewServerConn(c2, scfg)
		if err != nil {
			close(accepted)
			return
		}
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(creqs)
			accepted <- ch
		}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(c1, "pipe", &ssh.ClientConfig{User: "t", HostKeyCallback: ssh.FixedHostKey(signer.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	cl := ssh.NewClient(conn, chans, reqs)
	t.Cleanup(func() { _ = cl.Close() })
	ch, creqs, err := cl.OpenChannel(ChannelType, nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(creqs)
	server, ok := <-accepted
	if !ok {
		t.Fatal("the server end did not accept")
	}
	return ch, server
}

type wrapped struct{ ssh.Channel }

func (w wrapped) Unwrap() ssh.Channel { return w.Channel }

// TestSendWindowLayout checks that the pinned x/crypto/ssh keeps a channel's window where
// sendWindowOf reads it, through a wrapper as remote.Host's channels are wrapped.
func TestSendWindowLayout(t *testing.T) {
	client, _ := pipeChannel(t)
	w, err := sendWindowOf(wrapped{client})
	if err != nil {
		t.Fatal(err)
	}
	const initial = 64 * 32 << 10 // x/crypto/ssh's server grants channelWindowSize
	if got := w.available(); got != initial {
		t.Fatalf("window %d, want the peer's initial %d", got, initial)
	}
	if err := w.acquire(1000); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if got, want := w.available(), uint32(initial-1000-datagramCharge); got != want {
		t.Errorf("after one 1000-byte packet the window is %d, want %d (sshd's charge taken too)", got, want)
	}
	if _, err := sendWindowOf(&stuckChannel{}); err == nil {
		t.Error("a channel that is not x/crypto/ssh's has a window")
	}
}

// TestAcquireWaitsForWholePacket fills the window to less than a packet and checks that
// acquire waits for the peer's adjustment instead of letting Write split the packet.
func TestAcquireWaitsForWholePacket(t *testing.T) {
	client, server := pipeChannel(t)
	w, err := sendWindowOf(client)
	if err != nil {
		t.Fatal(err)
	}
	const pkt = 16000
	readDone := make(chan int64, 1)
	for w.available() >= pkt+datagramCharge {
		if err := w.acquire(pkt); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write(make([]byte, pkt)); err != nil {
			t.Fatal(err)
		}
	}
	left := w.available()
	acquired := make(chan error, 1)
	go func() { acquired <- w.acquire(pkt) }()
	select {
	case err := <-acquired:
		t.Fatalf("acquire with %d bytes of window returned %v, want it to wait", left, err)
	case <-time.After(100 * time.Millisecond):
	}
	go func() {
		n, _ := io.CopyN(io.Discard, server, 1<<20) // the server reads, x/crypto/ssh grants window
		readDone <- n
	}()
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire still waits after the peer granted window")
	}
	<-readDone
	if got := w.available(); got < pkt {
		t.Errorf("window %d after acquire, want room for the packet", got)
	}
}
