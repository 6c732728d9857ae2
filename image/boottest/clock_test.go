package boottest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// rtcBase is where the VM's real-time clock starts: years before the real
// time, like a board without one, which starts at its image's build time.
const rtcBase = "2020-01-01T00:00:00"

// clockStatus is the clock's part of /api/status.
type clockStatus struct {
	Synced   bool      `json:"synced"`
	Source   string    `json:"source"`
	LastSync time.Time `json:"last_sync"`
}

// checkClock waits until the gizmo says its clock is synchronised with the
// lab's NTP server (chrony in gz-isp, which Kea names in DHCPv4 option 42
// and DHCPv6 option 56), then compares the dashboard's Date header (its
// clock, at one-second resolution) with the host's.
func checkClock(t *testing.T, ctx context.Context, router netip.Addr) {
	t.Helper()
	base := fmt.Sprintf("http://[%s%%25%s]", router, netlab.HostIf)
	hc := netlab.HTTPClient(netlab.NSLanV6)
	get := func(path string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		return resp, b.Bytes(), err
	}
	var clock clockStatus
	if err := netlab.WaitFor(ctx, "the gizmo's clock to be synchronised", func(context.Context) (bool, error) {
		_, body, err := get("/api/status")
		if err != nil {
			return false, nil
		}
		var st struct {
			Clock clockStatus `json:"clock"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return false, fmt.Errorf("/api/status: %w: %s", err, body)
		}
		clock = st.Clock
		return clock.Synced, nil
	}); err != nil {
		t.Fatal(err)
	}
	if clock.Source != netlab.ISPWAN6.String() && clock.Source != netlab.ISPWAN4.String() {
		t.Errorf("synchronised with %q, want the lab's chrony at %s or %s", clock.Source, netlab.ISPWAN6, netlab.ISPWAN4)
	}
	before := time.Now()
	resp, _, err := get("/")
	after := time.Now()
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatalf("dashboard's Date header %q: %v", resp.Header.Get("Date"), err)
	}
	// Date has whole seconds; a few more for TCG and the clock's own
	// measurement.
	const slack = 3 * time.Second
	if date.Before(before.Truncate(time.Second).Add(-slack)) || date.After(after.Add(slack)) {
		t.Errorf("dashboard's Date %v, the host's clock %v: the gizmo's clock is off", date, before.UTC().Round(time.Second))
	}
	t.Logf("clock synchronised with %s at %v; dashboard's Date %v, host %v", clock.Source, clock.LastSync, date, before.UTC().Round(time.Second))
}

// staleRebindLog is what the delegation client logs when the restored
// clock makes a stored delegation look valid and it asks the server first.
const staleRebindLog = "confirming the stored prefix with Rebind before using it"

// rebootWithExpiredDelegation cuts the VM's power, lets its delegation run
// out while it is off (Kea moves to another pool and forgets it), and
// boots it again with its real-time clock years behind. The gizmo restores
// the time it saved in /perm, by which the stored delegation still looks
// valid; it must not offer it on the LAN before Kea (Rebind) or NTP has
// had a say. The RAs that gz-lan-v6 hears never carry the expired prefix,
// and carry one from the new pool once Kea answered.
func rebootWithExpiredDelegation(t *testing.T, ctx context.Context, l *netlab.Lab, vm *vmProcess, boot func(serial string) *vmProcess) {
	t.Helper()
	// The lease the gizmo stores must be one of a Reply after this boot's
	// NTP sync, when it also saved the time (a Renew comes every T1). A
	// Reply before the sync was stamped by the clock restored from /perm,
	// which lags by the reboot, and could look expired already.
	synced := time.Now()
	var old []netip.Prefix
	var expires time.Time
	if err := netlab.WaitFor(ctx, "a Renew after the gizmo's clock was set", func(context.Context) (bool, error) {
		leases, err := l.KeaLeases6()
		old, expires = nil, time.Time{}
		renewed := false
		for _, le := range leases {
			if le.Type != "IA_PD" {
				continue
			}
			old = append(old, le.Prefix)
			if le.Expire.After(expires) {
				expires = le.Expire
			}
			// Kea's expiry is its last Reply plus the valid lifetime.
			renewed = renewed || le.Expire.Add(-le.Valid).After(synced)
		}
		return renewed, err
	}); err != nil {
		t.Fatal(err)
	}
	vm.kill()
	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Off until the delegation's valid lifetime has ended.
	wait := time.Until(expires.Add(2 * time.Second))
	t.Logf("power cut with %v valid until %v; Kea now delegates from %v; off for %v more", old, expires.UTC().Round(time.Second), pool, wait.Round(time.Second))
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(wait):
	}

	// Listen before the VM boots, so that its first RA is seen too.
	type outcome struct {
		offered netip.Prefix
		err     error
	}
	watched := make(chan outcome, 1)
	listening := make(chan struct{})
	go func() {
		var o outcome
		var since time.Time
		o.err = watchPIOs(ctx, listening, func(p netip.Prefix, valid time.Duration) (bool, error) {
			if valid == 0 {
				return false, nil
			}
			if slices.ContainsFunc(old, p.Overlaps) {
				return true, fmt.Errorf("the gizmo offers %v, from the delegation that expired while it was off (valid %v)", p, valid)
			}
			if pool.Overlaps(p) && since.IsZero() {
				o.offered, since = p, time.Now()
			}
			// After the new prefix, listen on a little longer: the old
			// one must not come back either.
			return !since.IsZero() && time.Since(since) > 15*time.Second, nil
		})
		watched <- o
	}()
	select {
	case <-listening:
	case o := <-watched:
		t.Fatalf("RA watch: %v", o.err)
	}
	serial := filepath.Join(t.TempDir(), "serial-after-power-cut.log")
	boot(serial)
	o := <-watched
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Logf("after the reboot the gizmo offers %v from the new pool %v, never %v", o.offered, pool, old)
	// The case the test is about: the restored clock took the stored
	// delegation for valid, and the gizmo asked Kea before using it.
	b, _ := os.ReadFile(serial)
	if !bytes.Contains(b, []byte(staleRebindLog)) {
		t.Errorf("the console lacks %q: the stored delegation was not judged by the restored clock as the test meant", staleRebindLog)
	}
}

// watchPIOs solicits RAs in gz-lan-v6 every 3 s and hands every Prefix
// Information Option heard to check, until check says done or fails, or
// ctx ends. listening is closed once the socket is open.
func watchPIOs(ctx context.Context, listening chan<- struct{}, check func(p netip.Prefix, valid time.Duration) (bool, error)) error {
	return solicitRAs(ctx, listening, func(_ netip.Addr, ra *ndp.RouterAdvertisement) (bool, error) {
		for _, opt := range ra.Options {
			pi, ok := opt.(*ndp.PrefixInformation)
			if !ok {
				continue
			}
			if done, err := check(netip.PrefixFrom(pi.Prefix, int(pi.PrefixLength)), pi.ValidLifetime); err != nil || done {
				return done, err
			}
		}
		return false, nil
	})
}
