package resolver

import (
	"context"

	"github.com/miekg/dns"
)

// Answer resolves a client's query and returns the response to send. The
// listener has already checked the client's access, the opcode and the
// message's form; Answer handles RD, DO, CD and EDNS of the response.
func (r *Resolver) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeServerFailure)
	return resp
}
