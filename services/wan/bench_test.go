package wan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

func benchRA(b *testing.B) []byte {
	raw, err := ndp.MarshalMessage(ra(30*time.Minute,
		ndp.NewMTU(1492),
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: 2 * time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:0:1::")},
		&ndp.RecursiveDNSServer{Lifetime: 10 * time.Minute, Servers: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")}},
		&ndp.RouteInformation{PrefixLength: 48, Preference: ndp.High, RouteLifetime: time.Hour, Prefix: netip.MustParseAddr("2001:db8:ffff::")},
		&ndp.PREF64{Lifetime: 20 * time.Minute, Prefix: netip.MustParsePrefix("2001:db8:64::/96")}))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkRAPath is the service's whole per-RA work: validate, merge into
// the upstream view, build the view the daemon receives.
func BenchmarkRAPath(b *testing.B) {
	raw := benchRA(b)
	u := newUpstream()
	u.linkMTU = 1500
	var v Upstream
	b.ReportAllocs()
	for b.Loop() {
		r, err := parseRA(raw, router1, 255)
		if err != nil {
			b.Fatal(err)
		}
		u.apply(r, router1, t0)
		u.fill(&v, t0)
	}
}

// BenchmarkRAParseReference is the reference: mdlayher/ndp's parser alone,
// which every RA consumer built on it pays.
func BenchmarkRAParseReference(b *testing.B) {
	raw := benchRA(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ndp.ParseMessage(raw); err != nil {
			b.Fatal(err)
		}
	}
}
