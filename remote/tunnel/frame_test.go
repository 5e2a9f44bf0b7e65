package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// ipv4 is a minimal IPv4 packet of n bytes (n >= 20).
func ipv4(n int) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	return p
}

// ipv6 is an IPv6 packet with a payload of n bytes.
func ipv6(n int) []byte {
	p := make([]byte, 40+n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n))
	return p
}

func frame(af uint32, pkt []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, af), pkt...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream []byte
		want   [][]byte
		err    error // after the wanted packets
	}{
		{"one IPv4", frame(2, ipv4(20)), [][]byte{ipv4(20)}, io.EOF},
		{"IPv4 then IPv6 joined", cat(frame(2, ipv4(84)), frame(24, ipv6(8))), [][]byte{ipv4(84), ipv6(8)}, io.EOF},
		{"empty", nil, nil, io.EOF},
		{"cut in the family word", []byte{0, 0}, nil, io.ErrUnexpectedEOF},
		{"cut in the packet", frame(2, ipv4(60))[:30], nil, io.ErrUnexpectedEOF},
		{"cut after a whole frame", cat(frame(2, ipv4(20)), []byte{0, 0, 0, 2, 0x45}), [][]byte{ipv4(20)}, io.ErrUnexpectedEOF},
		{"unknown family", frame(10, ipv4(20)), nil, ErrFrame},
		{"IP version 5", frame(2, append([]byte{0x50}, make([]byte, 19)...)), nil, ErrFrame},
		{"IPv4 length below its header", frame(2, append([]byte{0x45, 0, 0, 10}, make([]byte, 16)...)), nil, ErrFrame},
		{"IPv4 header length below 20", frame(2, append([]byte{0x44, 0, 0, 20}, make([]byte, 16)...)), nil, ErrFrame},
		{"larger than the buffer", frame(2, ipv4(3000)), nil, ErrFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// One byte per Read: frames must not depend on how the stream is cut.
			d := NewDecoder(iotest.OneByteReader(bytes.NewReader(tt.stream)))
			buf := make([]byte, 2048)
			for i, want := range tt.want {
				n, err := d.Decode(buf)
				if err != nil || !bytes.Equal(buf[:n], want) {
					t.Fatalf("packet %d: %d bytes, %v; want %d bytes", i, n, err, len(want))
				}
			}
			if _, err := d.Decode(buf); !errors.Is(err, tt.err) {
				t.Fatalf("after the packets: %v, want %v", err, tt.err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pkt  []byte
		want []byte
		err  bool
	}{
		{"IPv4", ipv4(20), frame(AFInet, ipv4(20)), false},
		{"IPv6", ipv6(0), frame(AFInet6, ipv6(0)), false},
		{"empty", nil, nil, true},
		{"not IP", []byte{0x10, 1, 2}, nil, true},
		{"too large", make([]byte, MaxPacket+1), nil, true},
	}
	for _, tt := range tests {
		got, err := AppendFrame(nil, tt.pkt)
		if (err != nil) != tt.err || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: % x, %v", tt.name, got, err)
		}
	}
}

// FuzzDecode: the decoder never panics nor returns more than the buffer, each packet it
// returns is the stream's bytes after a family word, and it frames again.
func FuzzDecode(f *testing.F) {
	f.Add(frame(2, ipv4(20)))
	f.Add(cat(frame(24, ipv6(4)), frame(2, ipv4(28))))
	f.Add([]byte{0, 0, 0, 2, 0x4f, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		d := NewDecoder(bytes.NewReader(stream))
		buf := make([]byte, 1500)
		off := 0
		for {
			n, err := d.Decode(buf)
			if err != nil {
				return
			}
			if n > len(buf) || off+headerLen+n > len(stream) {
				t.Fatalf("decoded %d bytes at %d of a %d-byte stream", n, off, len(stream))
			}
			if !bytes.Equal(buf[:n], stream[off+headerLen:off+headerLen+n]) {
				t.Fatalf("packet at %d is not the stream's bytes", off)
			}
			if _, err := AppendFrame(nil, buf[:n]); err != nil {
				t.Fatalf("decoded packet does not frame again: %v", err)
			}
			off += headerLen + n
		}
	})
}
