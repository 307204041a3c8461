// Package transport owns every byte Bulwark sends to and receives from an
// upstream (authoritative) server.
//
// It is split in two layers. A Network moves raw datagrams and TCP messages
// to one server address: the real one opens sockets, the simulated internet
// (resolver/simnet), the replay runner and the attack tests supply their own.
// An Exchanger sits on top of any Network and is the single door through
// which every upstream reply passes: it draws the query ID and source port
// from crypto/rand, mixes the case of the query name (0x20), and accepts a
// reply only when its ID, question (byte for byte, case included), type and
// class match the query. It falls back from EDNS to plain DNS for servers that
// reject EDNS, and from UDP to TCP on truncation.
//
// On Linux the real Network's UDP sockets wait through one epoll reactor
// per Network (reactor_linux.go), which sets each socket up, query
// included, in one io_uring chain where the kernel has one
// (uring_linux.go), and the Hold-On windows of replies that went back at
// once are watched by one sweeper per Client (sweep.go), so an exchange
// starts no goroutine of its own.
//
// The package must not interpret answers beyond pairing them with their
// query: bailiwick, caching and referrals belong to the resolver. It never
// reads the wall clock for anything but socket deadlines, Hold-On windows
// and RTTs.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Network carries raw DNS messages to one upstream server address.
// Implementations must be safe for concurrent use.
type Network interface {
	// DialUDP opens a datagram association with server. Reads return only
	// datagrams whose source is server (a connected socket).
	DialUDP(ctx context.Context, server netip.AddrPort) (PacketConn, error)
	// DialTCP opens a stream to server carrying length-prefixed messages.
	DialTCP(ctx context.Context, server netip.AddrPort) (StreamConn, error)
}

// sendDialer is a Network that sends an association's first datagram as
// part of opening it: the socket Network, which on Linux sends it in a
// batch with those of the associations opened alongside
// (sendq_linux.go), and may report its failure at the first read. A
// Network without it is dialled, then written to.
type sendDialer interface {
	DialUDPSend(ctx context.Context, server netip.AddrPort, first []byte) (PacketConn, error)
}

// PacketConn is one connected UDP association. It is used by one goroutine
// at a time (the exchange, then a Hold-On watcher or sweeper).
type PacketConn interface {
	// Write sends one datagram.
	Write(b []byte) error
	// Read blocks until a datagram arrives or ctx is done. A simulated
	// network that knows no reply will come may return ErrTimeout at once,
	// so that replayed timeouts cost no real time.
	Read(ctx context.Context) (Datagram, error)
	// Close releases the association; later datagrams are dropped.
	Close() error
}

// Datagram is one received UDP payload.
type Datagram struct {
	Data []byte
	// Reassembled is true when the kernel rebuilt the datagram from IP
	// fragments: a spoofed second fragment carries no port, ID or question,
	// so such a reply cannot be trusted (threat model T4).
	Reassembled bool
	// From is the sender, when the Network knows it. A socket is bound to
	// its random port before it is connected to the server, and datagrams
	// that reached the port in between stay queued after the connect, so
	// the kernel's filter alone does not prove the source.
	From netip.AddrPort
	// At is when the kernel received it (SO_TIMESTAMPNS), zero where the
	// Network cannot tell. A loaded machine may read a datagram long after
	// it arrived; Hold-On judges a reply's earliness by At.
	At time.Time
}

// StreamConn is one TCP connection carrying DNS messages (RFC 7766); the
// two-byte length prefix is the implementation's business.
type StreamConn interface {
	WriteMsg(b []byte) error
	ReadMsg(ctx context.Context) ([]byte, error)
	Close() error
}

// Query is one question to one server, as the resolver asks it. The
// Exchanger chooses the ID, the letter case and the source port.
type Query struct {
	Server netip.AddrPort
	Name   string // fully qualified
	Type   uint16
	Class  uint16
	// DO asks for DNSSEC records (EDNS DO bit).
	DO bool
	// RD sets the recursion-desired bit: the server is a forwarder.
	RD bool
	// CD sets the checking-disabled bit, which Bulwark always sets upstream
	// when it validates itself.
	CD bool
	// TCP forces TCP from the start (a server known to be TCP-only, or a
	// re-ask after a suspected forgery).
	TCP bool
	// RTT is the resolver's smoothed estimate of the server's round trip,
	// 0 when unknown. Hold-On uses it to tell an injected early reply from
	// the genuine one.
	RTT time.Duration
	// Timeout, when positive, ends the exchange that long after it starts
	// if its context has not ended it sooner (the resolver's per-server
	// timeout). A field rather than a context layer: each layer cost a
	// timer and a registration with its parent per exchange (issue #6).
	Timeout time.Duration

	// end is when the exchange must be over (Exchange sets it).
	end time.Time
	// unwanted counts the replies of this exchange that failed the ID,
	// question or cookie check (noteUnwanted); Exchange reports it in
	// Response.Unwanted or an UnwantedError.
	unwanted int
}

// Response is a reply that passed every check of the Exchanger.
type Response struct {
	Msg *dns.Msg
	// RTT is the time from the send that was answered to the answer.
	RTT time.Duration
	// TCP says the reply came over TCP: an off-path attacker cannot forge
	// it, so the scrubber may let it replace cached delegations.
	TCP bool
	// EDNS says the reply was to a query that carried EDNS.
	EDNS bool
	// ServerCookie says the reply echoed our client cookie with a server
	// cookie (RFC 7873): like TCP, proof that the sender saw the query, so
	// an off-path spoofer did not write it (BIND CVE-2025-40778).
	ServerCookie bool
	// Unwanted counts the replies that arrived on this exchange's
	// associations before it ended and failed the ID, question or cookie
	// check: forgeries aimed at it. The transport counts them per server
	// (spoofing pressure); the resolver adds them up per zone, which the
	// transport knows nothing of.
	Unwanted int
	// Next, when not nil, waits for another acceptable reply to the same
	// query on the same association (Hold-On). The resolver calls it when
	// this reply fails DNSSEC validation: an on-path injector's forgery
	// arrives first and the genuine reply after it. It returns ErrTimeout
	// when none comes within the hold-on window.
	Next func(ctx context.Context) (*Response, error)
}

// Exchanger asks one question of one server and returns the genuine reply
// or an error. Like net/http's RoundTripper it must not interpret the reply
// beyond matching it to the query, and it is safe for concurrent use.
type Exchanger interface {
	Exchange(ctx context.Context, q Query) (*Response, error)
}

// Errors an Exchanger returns; the resolver records them per server.
var (
	// ErrTimeout: no acceptable reply before the context's deadline.
	ErrTimeout = errors.New("upstream timeout")
	// ErrRefused: the network refused the association (ICMP unreachable,
	// connection refused).
	ErrRefused = errors.New("upstream unreachable")
	// ErrCaseMismatch: replies came but none preserved the query's letter
	// case, even after the TCP retry without 0x20.
	ErrCaseMismatch = errors.New("upstream reply did not preserve 0x20 case")
	// ErrMalformed: the reply could not be unpacked.
	ErrMalformed = errors.New("malformed upstream reply")
)

// UnwantedError is the error of an exchange that failed after unwanted
// replies arrived on it: a flood of forgeries often ends in a timeout, and
// the resolver still needs the count. It wraps the exchange's error, so
// errors.Is sees the sentinel.
type UnwantedError struct {
	Unwanted int
	Err      error
}

func (e *UnwantedError) Error() string {
	return fmt.Sprintf("%v (%d unwanted replies)", e.Err, e.Unwanted)
}

func (e *UnwantedError) Unwrap() error { return e.Err }

// Unwanted returns how many unwanted replies the exchange that returned
// resp and err saw: Response.Unwanted, or the count of an UnwantedError.
func Unwanted(resp *Response, err error) int {
	if resp != nil {
		return resp.Unwanted
	}
	if ue, ok := errors.AsType[*UnwantedError](err); ok {
		return ue.Unwanted
	}
	return 0
}
