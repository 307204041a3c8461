// Package attack is Bulwark's attack suite (issue #5): go tests that poison
// a live resolver over real loopback sockets with the attacks of the threat
// model (../../../shared/docs/threat-model.md §5: OFF-*, FRAG-*, ONP-*,
// BAIL-*), and their harness: a raw-socket spoofer, an oracle that reads the
// authoritative server's query log, and an on-path injector built from the
// two. Every scenario runs twice: with the defense under test on, where it
// must not be poisoned, and with it switched off by a test-only option,
// where it must be poisoned within the same budget, or it proves nothing.
//
// It holds no production code. Tests send packets only to 127.0.0.0/8, or,
// for the fragment scenarios, to 198.18.0.0/15 inside network namespaces
// they create and remove (asserted before every raw sendto); they are
// bounded in packets and time, and need root for port 53, raw sockets and
// namespaces: without root they skip, saying so.
package attack
