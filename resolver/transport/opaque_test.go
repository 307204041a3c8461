package transport

import (
	"testing"

	"github.com/miekg/dns"
)

func TestUnpackLenientKeepsRefusedSVCBOpaque(t *testing.T) {
	raw := func(typ uint16, hexRdata string) dns.RR {
		return &dns.RFC3597{Hdr: dns.RR_Header{Name: "www.bank.test.", Rrtype: typ, Class: dns.ClassINET, Ttl: 300}, Rdata: hexRdata}
	}
	tests := []struct {
		name     string
		rr       dns.RR
		wantErr  bool
		wantType uint16
		opaque   bool
	}{
		{name: "HTTPSWithRepeatedKeyIsOpaque", rr: raw(dns.TypeHTTPS, "0001000001000302683200010003026833"), wantType: dns.TypeHTTPS, opaque: true},
		{name: "SVCBWithOverlongValueIsOpaque", rr: raw(dns.TypeSVCB, "000100000100040268"), wantType: dns.TypeSVCB, opaque: true},
		{name: "WellFormedHTTPSIsParsed", rr: raw(dns.TypeHTTPS, "000100000100030268320004000401020304"), wantType: dns.TypeHTTPS},
		{name: "MalformedAddressStaysAnError", rr: raw(dns.TypeA, "010203"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.bank.test.", dns.TypeHTTPS)
			m.Response = true
			m.Answer = []dns.RR{tc.rr}
			m.SetEdns0(1232, false)
			b, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnpackLenient(b)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("unpacked %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Answer) != 1 || got.Answer[0].Header().Rrtype != tc.wantType {
				t.Fatalf("answer = %v, want one record of type %d", got.Answer, tc.wantType)
			}
			if _, isOpaque := got.Answer[0].(*dns.RFC3597); isOpaque != tc.opaque {
				t.Errorf("answer %v opaque = %v, want %v", got.Answer[0], isOpaque, tc.opaque)
			}
			if got.IsEdns0() == nil {
				t.Error("OPT record lost")
			}
			if _, err := got.Pack(); err != nil {
				t.Errorf("repack: %v", err)
			}
		})
	}
}

// FuzzUnpackLenient: any bytes give a message or an error, never a panic;
// what the strict unpacker reads is returned as it reads it; and a record
// re-typed from opaque data is of a type the lenient path may re-type.
func FuzzUnpackLenient(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("www.bank.test.", dns.TypeHTTPS)
	m.Answer = []dns.RR{&dns.RFC3597{Hdr: dns.RR_Header{Name: "www.bank.test.", Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 300}, Rdata: "0001000001000302683200010003026833"}}
	if b, err := m.Pack(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		strict := new(dns.Msg)
		strictErr := strict.Unpack(append([]byte(nil), b...))
		got, err := UnpackLenient(b)
		if err != nil {
			if strictErr == nil {
				t.Fatalf("lenient failed (%v) where strict succeeded", err)
			}
			return
		}
		if strictErr == nil && got.String() != strict.String() {
			t.Fatalf("lenient read differs from strict:\n%v\n%v", got, strict)
		}
		if strictErr != nil {
			for _, rr := range sectionsOf(got) {
				if _, ok := rr.(*dns.RFC3597); ok && !opaqueTypes[rr.Header().Rrtype] && rr.Header().Rrtype != dns.TypeOPT {
					if _, known := dns.TypeToRR[rr.Header().Rrtype]; known {
						t.Fatalf("opaque record of type %d, which the lenient path never re-types", rr.Header().Rrtype)
					}
				}
			}
		}
	})
}
