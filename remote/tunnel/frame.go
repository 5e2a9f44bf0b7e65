package tunnel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Address families as OpenSSH writes them on the wire: OpenBSD's numbering on every platform
// (openbsd-compat/port-tun.c, OPENBSD_AF_INET and OPENBSD_AF_INET6).
const (
	AFInet  = 2
	AFInet6 = 24
)

// headerLen is the address family word before each IP packet.
const headerLen = 4

// MaxPacket is the largest IP packet a frame can carry (IPv4's total length field).
const MaxPacket = 65535

// ErrFrame says the channel's byte stream is not a sequence of frames; the stream cannot be
// resynchronised after it, so the tunnel must be closed.
var ErrFrame = errors.New("malformed tunnel frame")

// Decoder splits the channel's byte stream into IP packets. SSH keeps one CHANNEL_DATA
// message per packet, but x/crypto/ssh's Channel is a byte stream that may join or split
// them, so each packet's end is found from its own IP header.
type Decoder struct {
	r *bufio.Reader
}

// NewDecoder reads frames from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 256<<10)}
}

// Decode reads the next frame and copies its IP packet into buf. It returns io.EOF at a clean
// end between frames and an error wrapping ErrFrame when the stream is not a frame.
func (d *Decoder) Decode(buf []byte) (int, error) {
	// The address family and the first 8 bytes of the IP header hold both IPv4's total
	// length and IPv6's payload length.
	head, err := d.r.Peek(headerLen + 8)
	if err != nil {
		if errors.Is(err, io.EOF) && len(head) > 0 {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n, err := packetLen(head)
	if err != nil {
		return 0, err
	}
	if n > len(buf) {
		return 0, fmt.Errorf("%w: packet of %d bytes, buffer of %d", ErrFrame, n, len(buf))
	}
	if _, err := d.r.Discard(headerLen); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(d.r, buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return n, nil
}

// packetLen validates a frame's head (the family word and at least 8 bytes of IP header)
// and returns the length of its IP packet.
func packetLen(head []byte) (int, error) {
	// The IP version, not the family word, decides how the packet is read: sshd writes the
	// word from the version (sys_tun_infilter) and reads nothing from it (sys_tun_outfilter).
	switch af := binary.BigEndian.Uint32(head); af {
	case AFInet, AFInet6:
	default:
		return 0, fmt.Errorf("%w: address family %d", ErrFrame, af)
	}
	ip := head[headerLen:]
	switch ip[0] >> 4 {
	case 4:
		n := int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl := int(ip[0]&0x0f) * 4; ihl < 20 || n < ihl {
			return 0, fmt.Errorf("%w: IPv4 header length %d, total length %d", ErrFrame, ihl, n)
		}
		return n, nil
	case 6:
		return 40 + int(binary.BigEndian.Uint16(ip[4:6])), nil
	default:
		return 0, fmt.Errorf("%w: IP version %d", ErrFrame, ip[0]>>4)
	}
}

// AppendFrame appends pkt's frame (the family word, then the packet) to dst. sshd removes
// the word without reading it (SSH_TUN_PREPEND_AF); it is set right for other peers.
func AppendFrame(dst, pkt []byte) ([]byte, error) {
	if len(pkt) == 0 || len(pkt) > MaxPacket {
		return dst, fmt.Errorf("%w: packet of %d bytes", ErrFrame, len(pkt))
	}
	var af uint32
	switch pkt[0] >> 4 {
	case 4:
		af = AFInet
	case 6:
		af = AFInet6
	default:
		return dst, fmt.Errorf("%w: IP version %d", ErrFrame, pkt[0]>>4)
	}
	dst = binary.BigEndian.AppendUint32(dst, af)
	return append(dst, pkt...), nil
}
