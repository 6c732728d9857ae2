package iperf

import "testing"

func TestParseTCP(t *testing.T) {
	r, err := Parse([]byte(`{"end":{"sum_received":{"bytes":1000,"bits_per_second":9.5e9}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Gbps() != 9.5 || r.End.SumReceived.Bytes != 1000 {
		t.Errorf("Gbps %v, bytes %d; want 9.5 and 1000", r.Gbps(), r.End.SumReceived.Bytes)
	}
	if _, ok := r.Delivered(); ok {
		t.Error("a TCP report has a UDP result")
	}
}

func TestParseUDP(t *testing.T) {
	r, err := Parse([]byte(`{"end":{"sum":{"packets":1100,"lost_packets":100,"seconds":2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if pps, ok := r.Delivered(); !ok || pps != 500 {
		t.Errorf("Delivered = %v, %v; want 500 packets/s", pps, ok)
	}
}

// iperf3 -J may exit 0 with its error in the report.
func TestParseError(t *testing.T) {
	r, err := Parse([]byte(`{"start":{},"error":"unable to connect to server: Connection refused"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == "" {
		t.Error("error not read")
	}
	if _, err := Parse([]byte("iperf3: not JSON")); err == nil {
		t.Error("no error for output that is no report")
	}
}
