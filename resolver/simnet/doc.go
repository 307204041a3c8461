// Package simnet is the simulated internet that Bulwark's tests resolve
// against: authoritative servers built from zone text that answer as NSD
// would (referrals, CNAME and DNAME, wildcards, negative answers, DNSSEC
// signatures and NSEC/NSEC3 denial proofs, truncation), a Network that
// carries queries to them in memory through the transport.Network seam or
// over real loopback sockets, per-server fault knobs (latency, drops, dead,
// lame, EDNS intolerance, TCP-only, case mangling, custom handlers) with a
// log of every query received, a Hierarchy builder that wires root, TLD
// and leaf zones together in a few lines, and the virtual Clock its tests
// and the replay runner move by hand.
//
// It is test infrastructure: the daemon never imports it. It must not send
// a packet beyond loopback: servers listen only on 127.0.0.0/8 or ::1, and
// in-memory queries never leave the process.
package simnet
