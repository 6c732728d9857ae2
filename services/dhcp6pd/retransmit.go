package dhcp6pd

import "time"

// Transmission parameters, RFC 8415 §7.6.
const (
	solMaxDelay = 1 * time.Second
	solTimeout  = 1 * time.Second
	solMaxRT    = 3600 * time.Second
	reqTimeout  = 1 * time.Second
	reqMaxRT    = 30 * time.Second
	reqMaxRC    = 10
	renTimeout  = 10 * time.Second
	renMaxRT    = 600 * time.Second
	rebTimeout  = 10 * time.Second
	rebMaxRT    = 600 * time.Second
)

// retransmission is the RFC 8415 §15 retransmission schedule of one
// message exchange. rand returns a value in [-0.1, 0.1] (RAND of §15).
type retransmission struct {
	IRT, MRT time.Duration // initial and maximum retransmission time; MRT 0: no maximum
	MRC      int           // maximum retransmission count; 0: unlimited
	MRD      time.Duration // maximum retransmission duration; 0: unlimited
	// FirstPositive makes the first RT strictly greater than IRT, as
	// §18.2.1 requires for Solicit so that Advertises can be collected.
	FirstPositive bool

	rt    time.Duration
	sent  int
	spent time.Duration
}

// next returns how long to wait for a reply to the transmission just made,
// and false when the exchange has failed (MRC or MRD reached, §15).
func (r *retransmission) next(rand func() float64) (time.Duration, bool) {
	if r.MRC > 0 && r.sent >= r.MRC {
		return 0, false
	}
	if r.MRD > 0 && r.spent >= r.MRD {
		return 0, false
	}
	if r.sent == 0 {
		// RT = IRT + RAND*IRT
		x := rand()
		if r.FirstPositive && x <= 0 {
			x = -x
			if x == 0 {
				x = 0.05
			}
		}
		r.rt = r.IRT + scale(r.IRT, x)
	} else {
		// RT = 2*RTprev + RAND*RTprev
		r.rt = 2*r.rt + scale(r.rt, rand())
	}
	if r.MRT > 0 && r.rt > r.MRT {
		// RT = MRT + RAND*MRT
		r.rt = r.MRT + scale(r.MRT, rand())
	}
	r.sent++
	wait := r.rt
	// §15: "MRD specifies an upper bound on the length of time a client may
	// retransmit a message", so the last wait is cut at MRD.
	if r.MRD > 0 && r.spent+wait > r.MRD {
		wait = r.MRD - r.spent
	}
	r.spent += wait
	return wait, true
}

func scale(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * f)
}
