package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// ChannelType is the channel OpenSSH's client opens for `ssh -w` (PROTOCOL, section 2.3).
const ChannelType = "tun@openssh.com"

// modePointToPoint is SSH_TUNMODE_POINTOPOINT (ssh.h): IP packets, a tun device.
const modePointToPoint = 1

// UnitAny is SSH_TUNID_ANY (ssh.h): sshd lets the kernel name the device.
const UnitAny = 0x7fffffff

// Opener opens an SSH channel on a live connection; *remote.Host is one.
type Opener interface {
	OpenChannel(ctx context.Context, name string, payload []byte) (ssh.Channel, <-chan *ssh.Request, error)
}

// Device is one tun@openssh.com channel seen as IP packets: sshd writes what Device sends
// into the host's tun device and sends what the host routes into it.
type Device struct {
	ch  ssh.Channel
	dec *Decoder
	win *sendWindow // nil only for test doubles of ch

	wmu  sync.Mutex
	wbuf []byte

	stall   time.Duration
	stalled atomic.Bool

	once sync.Once
	err  error
	done chan struct{} // closed when the request drainer has stopped
}

// ErrStalled says a packet waited longer than the stall timeout for the peer's channel
// window; the device has closed its channel and the tunnel must be opened again.
var ErrStalled = errors.New("tunnel channel stalled")

// StallTimeout is how long WritePacket waits for channel window before it gives the
// channel up: sshd grants window as it writes packets to the device, so a window that
// stays shut for this long is a wedged peer or link, and a new tunnel is the way out.
const StallTimeout = 15 * time.Second

// OpenDevice opens a point-to-point tunnel to the host's tun device with the given unit
// number (tun<unit>), or UnitAny.
func OpenDevice(ctx context.Context, o Opener, unit uint32) (*Device, error) {
	d, err := openChannel(ctx, o, unit)
	if err != nil {
		return nil, fmt.Errorf("open %s unit %d: %w", ChannelType, unit, err)
	}
	if d.win, err = sendWindowOf(d.ch); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("open %s unit %d: %w", ChannelType, unit, err)
	}
	return d, nil
}

// Probe opens a tun@openssh.com channel for any unit and closes it at once: sshd creates a
// device for it and deletes it with the channel. It tells whether sshd permits the tunnel
// (an *ssh.OpenChannelError when not).
func Probe(ctx context.Context, o Opener) error {
	d, err := openChannel(ctx, o, UnitAny)
	if err != nil {
		return fmt.Errorf("open %s: %w", ChannelType, err)
	}
	return d.Close()
}

// openChannel opens the tun@openssh.com channel for unit, in point-to-point mode.
func openChannel(ctx context.Context, o Opener, unit uint32) (*Device, error) {
	payload := ssh.Marshal(struct{ Mode, Unit uint32 }{modePointToPoint, unit})
	ch, reqs, err := o.OpenChannel(ctx, ChannelType, payload)
	if err != nil {
		return nil, err
	}
	return newDevice(ch, reqs), nil
}

func newDevice(ch ssh.Channel, reqs <-chan *ssh.Request) *Device {
	d := &Device{ch: ch, dec: NewDecoder(ch), stall: StallTimeout, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		ssh.DiscardRequests(reqs) // sshd sends none on this channel; ends when it closes
	}()
	return d
}

// ReadPacket reads the next IP packet into buf (at least MTU bytes). It is not safe for
// concurrent use. It returns io.EOF once the channel has ended.
func (d *Device) ReadPacket(buf []byte) (int, error) {
	n, err := d.dec.Decode(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read tunnel: %w", err)
	}
	return n, err
}

// WritePacket sends one IP packet as one CHANNEL_DATA message, once the peer's window holds
// all of it (sendWindow). It is safe for concurrent use.
func (d *Device) WritePacket(pkt []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	buf, err := AppendFrame(d.wbuf[:0], pkt)
	if err != nil {
		return err
	}
	d.wbuf = buf
	watchdog := time.AfterFunc(d.stall, func() {
		d.stalled.Store(true)
		_ = d.ch.Close() // ends the blocked Write once sshd confirms the close
	})
	if d.win != nil {
		err = d.win.acquire(uint32(len(buf)))
	}
	if err == nil {
		_, err = d.ch.Write(buf)
	}
	watchdog.Stop()
	if d.stalled.Load() {
		return fmt.Errorf("write tunnel: %w after %v", ErrStalled, d.stall)
	}
	if err != nil {
		return fmt.Errorf("write tunnel: %w", err)
	}
	return nil
}

// Close closes the channel, which makes sshd close the tun device, and waits for the
// device's goroutine. It is idempotent.
func (d *Device) Close() error {
	d.once.Do(func() {
		d.err = d.ch.Close()
		if errors.Is(d.err, io.EOF) {
			d.err = nil
		}
		<-d.done
	})
	return d.err
}
