package cache_test

import (
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/bulwark-dns/bulwark/cache"
)

func ExampleCache() {
	c := cache.New(cache.Config{})
	now := time.Unix(1_700_000_000, 0) // the resolver's injected clock
	rr, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	k := cache.NewKey("WWW.Example.com", dns.TypeA, dns.ClassINET)
	c.Put(k, cache.Entry{RRs: []dns.RR{rr}, Rank: cache.RankAnswerAA}, now)

	e, ok := c.Get(k, now.Add(100*time.Second))
	fmt.Println(ok, e.RRs[0].Header().Ttl, e.Rank)
	_, ok = c.Get(k, now.Add(300*time.Second))
	fmt.Println(ok)
	// Output:
	// true 200 answer-aa
	// false
}
