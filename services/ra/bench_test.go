package ra

import (
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

// BenchmarkMessage is the per-RA cost of the plan: lifetimes computed at
// send time and the message encoded. BenchmarkMarshalOnly is the reference:
// encoding the same RA, built once, with the ndp package alone.
func BenchmarkMessage(b *testing.B) {
	p := testPlan()
	p.SourceLinkLayer = hostMAC
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ndp.MarshalMessage(p.Message(now)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalOnly(b *testing.B) {
	p := testPlan()
	p.SourceLinkLayer = hostMAC
	m := p.Message(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ndp.MarshalMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckSolicitation is the RS validation on a typical RS (with
// SLLAO); BenchmarkParseRSOnly is the reference: ndp's parser on the same
// bytes.
func BenchmarkCheckSolicitation(b *testing.B) {
	rs := marshalRS(b, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: hostMAC})
	b.ReportAllocs()
	for b.Loop() {
		if _, reason := checkSolicitation(rs, 255, hostLL); reason != "" {
			b.Fatal(reason)
		}
	}
}

func BenchmarkParseRSOnly(b *testing.B) {
	rs := marshalRS(b, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: hostMAC})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ndp.ParseMessage(rs); err != nil {
			b.Fatal(err)
		}
	}
}
