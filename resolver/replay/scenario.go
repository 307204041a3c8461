// Package replay runs the replay scenarios (.rpl/.crpl) that Unbound's
// testbound and CZ.NIC's Deckard use to test resolvers, against a real
// Bulwark resolver: it parses both dialects, plays the scripted
// authoritative servers on an in-memory transport.Network, drives a virtual
// clock, sends the client queries and checks the answers.
//
// It owns the scenario format and the judging of answers only. It must not
// carry resolution logic of its own: every option a scenario sets becomes a
// real resolver.Config field, and a scenario that needs a behaviour Bulwark
// lacks is skipped with the option named, never special-cased. It never
// reads the wall clock for anything but the real-time bounds that keep one
// hung scenario from stalling a run.
package replay

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Dialect selects the rules of the project that wrote a scenario
// (FORMAT.md): they differ in range selection, defaults and comparisons.
type Dialect int

// Dialects.
const (
	Unbound Dialect = iota
	Deckard
)

func (d Dialect) String() string {
	if d == Deckard {
		return "deckard"
	}
	return "unbound"
}

// Scenario is one parsed .rpl file.
type Scenario struct {
	Path    string
	Dialect Dialect
	// Config holds the CONFIG lines in file order.
	Config []Option
	// Files holds Unbound TEMPFILE_CONTENTS and AUTOTRUST_FILE bodies by id.
	Files    map[string]string
	Title    string
	Ranges   []*Range
	Steps    []*Step
	Warnings []string
}

// Option is one CONFIG line. Block is the Unbound clause it sits in
// ("server", "stub-zone", "forward-zone"...), empty for Deckard.
type Option struct {
	Block string
	Key   string
	Value string
	Line  int
}

// Range is a scripted set of authoritative answers valid for steps
// [From, To], limited to Addrs when any are given.
type Range struct {
	From, To int
	Addrs    []netip.Addr
	Entries  []*Entry
	Line     int
}

// Step is one line of the scenario's script.
type Step struct {
	N    int
	Type string
	Args []string
	// Addr is the QUERY / CHECK_OUT_QUERY ADDRESS argument, if any.
	Addr   netip.Addr
	Elapse float64
	Entry  *Entry
	Line   int
}

// Entry is one message template: a query to send, an expected answer or a
// scripted reply.
type Entry struct {
	Line   int
	Match  map[string]bool
	Adjust map[string]bool
	// EDE is the info code MATCH ede=N asks for; -1 for ede=any. HasEDE
	// tells whether any was asked.
	EDE    int
	HasEDE bool

	Opcode, Rcode int
	Flags         Flags
	DO            bool

	Question []dns.Question
	Sections [3][]dns.RR // answer, authority, additional

	HexAnswer   []byte
	EDNSData    []byte
	HasEDNSData bool
	Raw         []byte
	Extra       []*Entry
	Mandatory   bool
}

// Flags are the header bits an entry's REPLY line sets.
type Flags struct {
	QR, AA, TC, RD, RA, AD, CD bool
}

// Sections of an entry, in wire order after the question.
const (
	secAnswer = iota
	secAuthority
	secAdditional
)
