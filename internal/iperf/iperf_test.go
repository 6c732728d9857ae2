package iperf

import (
	"strings"
	"testing"
)

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

func TestRetryUntilTheServerListens(t *testing.T) {
	refused := []byte(`{"error":"unable to connect to server: Connection refused"}`)
	ok := []byte(`{"end":{"sum_received":{"bytes":1000,"bits_per_second":2e9}}}`)
	runs := 0
	r, err := Retry(5, 0, func() ([]byte, error) {
		runs++
		if runs < 3 {
			return refused, nil
		}
		return ok, nil
	})
	if err != nil || r.Gbps() != 2 || runs != 3 {
		t.Errorf("Retry = %v Gbit/s, %v after %d runs; want 2 after 3", r.Gbps(), err, runs)
	}
	_, err = Retry(2, 0, func() ([]byte, error) { return refused, nil })
	if err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("Retry with no server = %v; want iperf3's error", err)
	}
	if _, err := Result(func() ([]byte, error) { return []byte(`{"end":{}}`), nil }); err == nil {
		t.Error("Result accepted a report with no data")
	}
}
