package transport

import (
	"net"
	"slices"
	"testing"
	"time"
)

// TestPollReadsWhatIsQueuedBehindASocketError: an ICMP error (which an
// on-path injector can send) is reported before the datagrams queued on the
// socket and cleared by that report. The sweeper polls until nothing is
// left, so a Poll that took the error for an empty queue left a late reply
// unjudged, with no further edge to report it.
func TestPollReadsWhatIsQueuedBehindASocketError(t *testing.T) {
	tests := []struct {
		name   string
		queued []string // sent by the server before the error
		want   []string // what Poll returns until it reports none
	}{
		{name: "ErrorAlone", want: nil},
		{name: "OneDatagramBehindTheError", queued: []string{"late"}, want: []string{"late"}},
		{name: "TwoDatagramsBehindTheError", queued: []string{"late", "later"}, want: []string{"late", "later"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			pc, local := dialLoopback(t, server)
			for _, s := range tc.queued {
				if _, err := server.WriteToUDPAddrPort([]byte(s), local); err != nil {
					t.Fatal(err)
				}
			}
			server.Close()
			// The closed port answers with an ICMP port unreachable.
			if err := pc.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			u := pc.(*udpConn)
			var got []string
			for range 4 {
				dg, ok := u.Poll()
				if !ok {
					break
				}
				got = append(got, string(dg.Data))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("polled %q, want %q", got, tc.want)
			}
		})
	}
}
