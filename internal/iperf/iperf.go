// Package iperf reads the JSON report of iperf3 -J, the tool the
// benchmarks and throughput tests measure between network namespaces
// with.
package iperf

import (
	"encoding/json"
	"fmt"
	"time"
)

// Report is the part of an iperf3 -J report that the measurements read.
type Report struct {
	End struct {
		// SumReceived is the receiver's side of a TCP test.
		SumReceived struct {
			Bytes         uint64  `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		// Sum sums up a UDP test.
		Sum struct {
			Packets     float64 `json:"packets"`
			LostPackets float64 `json:"lost_packets"`
			Seconds     float64 `json:"seconds"`
		} `json:"sum"`
	} `json:"end"`
	// Error is iperf3's own error; it may exit 0 with one here.
	Error string `json:"error"`
}

// Parse reads the report iperf3 -J printed as out.
func Parse(out []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(out, &r); err != nil {
		return Report{}, fmt.Errorf("iperf3 report: %w", err)
	}
	return r, nil
}

// Gbps is the TCP test's rate at the receiver, in Gbit/s.
func (r Report) Gbps() float64 { return r.End.SumReceived.BitsPerSecond / 1e9 }

// Delivered is the UDP test's rate of packets that arrived, per second;
// false when the report holds no UDP result.
func (r Report) Delivered() (float64, bool) {
	s := r.End.Sum
	if s.Seconds == 0 {
		return 0, false
	}
	return (s.Packets - s.LostPackets) / s.Seconds, true
}

// Result runs iperf3 -J through run and reads its report: an error when
// the command failed, the report holds iperf3's own error, or it carries
// no data.
func Result(run func() ([]byte, error)) (Report, error) {
	out, err := run()
	if err != nil {
		return Report{}, fmt.Errorf("iperf3: %w: %s", err, out)
	}
	r, err := Parse(out)
	if err != nil {
		return Report{}, err
	}
	if r.Error != "" {
		return Report{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.Bytes == 0 && r.End.Sum.Packets == 0 {
		return Report{}, fmt.Errorf("iperf3: no data in the report: %s", out)
	}
	return r, nil
}

// Retry is Result tried up to tries times, pause apart, until one run
// reports: on a busy machine the server may not listen yet, or a route
// not be there yet, when the client starts.
func Retry(tries int, pause time.Duration, run func() ([]byte, error)) (Report, error) {
	var err error
	for i := range tries {
		if i > 0 {
			time.Sleep(pause)
		}
		var r Report
		if r, err = Result(run); err == nil {
			return r, nil
		}
	}
	return Report{}, err
}
