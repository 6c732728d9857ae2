package dnstest

import (
	"testing"

	"github.com/miekg/dns"
)

// The handler's answer reaches a client at the address ServeUDP returns.
func TestServeUDPAnswers(t *testing.T) {
	addr := ServeUDP(t, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		w.WriteMsg(m)
	})
	q := new(dns.Msg)
	q.SetQuestion("nothing.example.test.", dns.TypeA)
	r, err := dns.Exchange(q, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError || r.Id != q.Id {
		t.Errorf("answer %v, want NXDOMAIN to query %d", r, q.Id)
	}
}
