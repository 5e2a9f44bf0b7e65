package tunnel

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"unsafe"

	"golang.org/x/crypto/ssh"
)

// datagramCharge is what sshd charges against a datagram channel's window for each
// message beyond its data: the string length it stores the datagram under (channels.c
// channel_input_data, `win_len += 4`), and credits back with the datagram when it has
// written it to the device (channel_handle_wfd, local_consumed).
const datagramCharge = 4

// sendWindow is the peer's window of an x/crypto/ssh channel, which x/crypto/ssh keeps to
// itself. A tun@openssh.com channel needs it for two things x/crypto/ssh does not do:
//   - send each packet whole: x/crypto/ssh's Write sends what the window allows and the
//     rest in a later message, and sshd takes every message for a datagram of its own, so a
//     packet split at the window's edge becomes two malformed ones; the first write of one
//     into the tun device fails, and sshd then stops writing the channel to the device for
//     good while the channel stays open (chan_write_failed);
//   - charge 4 bytes more per packet, as sshd does: otherwise x/crypto/ssh's view of the
//     window grows by 4 bytes with every packet sshd credits, until it sends past sshd's
//     window (dropped by sshd, "rcvd too much data"; a disconnect in later releases).
//
// It reaches the window through reflection on x/crypto/ssh's channel type, whose layout
// TestSendWindowLayout checks for the pinned version; a version without that layout makes
// OpenDevice fail with errNoWindow rather than send split packets.
type sendWindow struct {
	cond   *sync.Cond
	win    *uint32
	closed *bool
}

var errNoWindow = errors.New("this build's golang.org/x/crypto/ssh keeps a channel's window where Satellite cannot find it")

// sendWindowOf finds the window of ch, an x/crypto/ssh channel or a wrapper of one with an
// Unwrap method.
func sendWindowOf(ch ssh.Channel) (*sendWindow, error) {
	for {
		u, ok := ch.(interface{ Unwrap() ssh.Channel })
		if !ok {
			break
		}
		ch = u.Unwrap()
	}
	v := reflect.ValueOf(ch)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %T", errNoWindow, ch)
	}
	w := v.Elem().FieldByName("remoteWin")
	if !w.IsValid() || w.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %T has no remoteWin", errNoWindow, ch)
	}
	cond, win, closed := w.FieldByName("Cond"), w.FieldByName("win"), w.FieldByName("closed")
	if cond.Type() != reflect.TypeFor[*sync.Cond]() || win.Kind() != reflect.Uint32 || closed.Kind() != reflect.Bool {
		return nil, fmt.Errorf("%w: %T's window is %v", errNoWindow, ch, w.Type())
	}
	c := *(**sync.Cond)(unsafe.Pointer(cond.UnsafeAddr()))
	if c == nil {
		return nil, fmt.Errorf("%w: %T's window has no lock", errNoWindow, ch)
	}
	return &sendWindow{
		cond:   c,
		win:    (*uint32)(unsafe.Pointer(win.UnsafeAddr())),
		closed: (*bool)(unsafe.Pointer(closed.UnsafeAddr())),
	}, nil
}

// acquire waits until the window holds n bytes and sshd's charge, and takes the charge, so
// that the caller's following Write of n bytes goes out as one message. The caller must be
// the channel's only writer: the window can then only grow until its Write.
func (w *sendWindow) acquire(n uint32) error {
	w.cond.L.Lock()
	defer w.cond.L.Unlock()
	for *w.win < n+datagramCharge && !*w.closed {
		w.cond.Wait()
	}
	if *w.closed {
		return io.EOF
	}
	*w.win -= datagramCharge
	return nil
}

// available is the window now, for tests.
func (w *sendWindow) available() uint32 {
	w.cond.L.Lock()
	defer w.cond.L.Unlock()
	return *w.win
}
