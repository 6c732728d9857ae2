package dhcp6pd

import (
	"testing"
	"time"
)

func constRand(x float64) func() float64 { return func() float64 { return x } }

func waits(r retransmission, rnd func() float64, n int) []time.Duration {
	var out []time.Duration
	for range n {
		w, ok := r.next(rnd)
		if !ok {
			break
		}
		out = append(out, w)
	}
	return out
}

func TestRetransmission(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		r    retransmission
		rand float64
		n    int
		want []time.Duration
	}{
		{
			name: "RFC 8415 15: RT doubles from IRT",
			r:    retransmission{IRT: s, MRT: 100 * s},
			n:    4,
			want: []time.Duration{s, 2 * s, 4 * s, 8 * s},
		},
		{
			name: "RFC 8415 15: RAND scales each RT by +-10%",
			r:    retransmission{IRT: 10 * s, MRT: 600 * s},
			rand: 0.1,
			n:    2,
			want: []time.Duration{11 * s, 23100 * time.Millisecond},
		},
		{
			name: "RFC 8415 15: RT above MRT becomes MRT + RAND*MRT",
			r:    retransmission{IRT: 10 * s, MRT: 30 * s},
			rand: -0.1,
			n:    4,
			want: []time.Duration{9 * s, 17100 * time.Millisecond, 27 * s, 27 * s},
		},
		{
			name: "RFC 8415 15: MRC limits the number of transmissions",
			r:    retransmission{IRT: s, MRT: 30 * s, MRC: 3},
			n:    10,
			want: []time.Duration{s, 2 * s, 4 * s},
		},
		{
			name: "RFC 8415 15: MRD ends the exchange; the last wait is cut to it",
			r:    retransmission{IRT: 10 * s, MRT: 600 * s, MRD: 50 * s},
			n:    10,
			want: []time.Duration{10 * s, 20 * s, 20 * s},
		},
		{
			name: "RFC 8415 18.2.1: the first Solicit RT is strictly greater than IRT",
			r:    retransmission{IRT: s, MRT: 3600 * s, FirstPositive: true},
			rand: -0.1,
			n:    1,
			want: []time.Duration{1100 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := waits(tt.r, constRand(tt.rand), tt.n)
			if len(got) != len(tt.want) {
				t.Fatalf("waits %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("waits %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}
