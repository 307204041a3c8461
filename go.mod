module github.com/bulwark-dns/bulwark

go 1.26.8

// DNSSEC zones still signed with RSA keys under 1024 bits must validate
// (as in Unbound and BIND); Go refuses such keys unless told.
godebug rsa1024min=0

require (
	filippo.io/nistec v0.0.4
	github.com/cloudflare/circl v1.6.5
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/miekg/dns v1.1.73
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
)
