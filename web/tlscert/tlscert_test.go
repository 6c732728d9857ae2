package tlscert

import (
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

var lanNames = Names{
	DNS: []string{"gizmo.home.arpa", "gizmo"},
	IPs: []netip.Addr{netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("203.0.113.129")},
}

func TestFirstBootMakesKeyAndCertificate(t *testing.T) {
	dir := t.TempDir()
	id, issued, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	if !issued {
		t.Error("first Ensure did not report a new certificate")
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	c := id.Cert.Leaf
	if !slices.Equal(c.DNSNames, lanNames.DNS) || len(c.IPAddresses) != 2 {
		t.Errorf("SANs %v %v, want %v", c.DNSNames, c.IPAddresses, lanNames)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA (P-256)", c.PublicKeyAlgorithm)
	}
	// RFC 5280 §4.1.2.5: a Pi boots in 1970 until NTP answers, and the
	// certificate must already be valid then, and stay so.
	for _, at := range []time.Time{time.Unix(0, 0), time.Now(), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if at.Before(c.NotBefore) || at.After(c.NotAfter) {
			t.Errorf("not valid at %v (%v..%v)", at, c.NotBefore, c.NotAfter)
		}
	}
	if err := c.VerifyHostname("gizmo.home.arpa"); err != nil {
		t.Error(err)
	}
	if err := c.VerifyHostname("203.0.113.129"); err != nil {
		t.Error(err)
	}
}

func TestRestartKeepsTheIdentity(t *testing.T) {
	dir := t.TempDir()
	first, _, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	again, issued, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	if issued || again.CertSHA256() != first.CertSHA256() {
		t.Errorf("a restart re-issued the certificate (%v → %v)", first.CertSHA256(), again.CertSHA256())
	}
	// The init knows no addresses: it must not take the dashboard's away.
	initID, issued, err := Ensure(dir, Names{DNS: []string{"gizmo.home.arpa"}})
	if err != nil {
		t.Fatal(err)
	}
	if issued || initID.CertSHA256() != first.CertSHA256() {
		t.Errorf("a caller asking for fewer names re-issued the certificate")
	}
}

func TestNewAddressReissuesWithTheSameKey(t *testing.T) {
	dir := t.TempDir()
	first, _, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	moved := Names{DNS: lanNames.DNS, IPs: []netip.Addr{netip.MustParseAddr("fd00:1::1"), netip.MustParseAddr("192.168.64.1")}}
	second, issued, err := Ensure(dir, moved)
	if err != nil {
		t.Fatal(err)
	}
	if !issued || second.CertSHA256() == first.CertSHA256() {
		t.Fatal("a new LAN address did not re-issue the certificate")
	}
	if second.PublicKeySHA256() != first.PublicKeySHA256() {
		t.Errorf("re-issue changed the key: the pinned fingerprint %s is now %s", first.PublicKeySHA256(), second.PublicKeySHA256())
	}
	if err := second.Cert.Leaf.VerifyHostname("203.0.113.129"); err == nil {
		t.Error("the old legacy address is still named (addresses must not pile up)")
	}
	// A new DNS name is added to the old ones, and the addresses kept.
	third, _, err := Ensure(dir, Names{DNS: []string{"router.home.arpa"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gizmo.home.arpa", "router.home.arpa", "192.168.64.1"} {
		if err := third.Cert.Leaf.VerifyHostname(n); err != nil {
			t.Errorf("after adding a name: %v", err)
		}
	}
}

func TestConcurrentFirstBootAgreesOnOneKey(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	keys := make([]string, 8)
	for i := range keys {
		wg.Go(func() {
			id, _, err := Ensure(dir, lanNames)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = id.PublicKeySHA256()
		})
	}
	wg.Wait()
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("racing processes ended with different keys: %v", keys)
		}
	}
	id, _, err := Ensure(dir, lanNames)
	if err != nil || id.PublicKeySHA256() != keys[0] {
		t.Fatalf("after the race: %v %v", id.PublicKeySHA256(), err)
	}
}

func TestTornCertificateIsReplaced(t *testing.T) {
	dir := t.TempDir()
	first, _, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("-----BEGIN CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, issued, err := Ensure(dir, lanNames)
	if err != nil || !issued || id.PublicKeySHA256() != first.PublicKeySHA256() {
		t.Errorf("torn certificate: issued %v, key %s (want %s), err %v", issued, id.PublicKeySHA256(), first.PublicKeySHA256(), err)
	}
}

func TestCorruptKeyIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Ensure(dir, lanNames); err == nil {
		t.Error("a corrupt key was silently replaced (the pinned fingerprint would change)")
	}
}

func TestStoreSeesAnotherProcessReissue(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, Names{DNS: []string{"gizmo.home.arpa"}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.Current()
	// The dashboard, in another process, adds its addresses. File times
	// may have a coarse resolution: make the change visible.
	other, _, err := Ensure(dir, lanNames)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, CertFile), future, future)
	after, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	if after.CertSHA256() != other.CertSHA256() || after.CertSHA256() == before.CertSHA256() {
		t.Errorf("store serves %s, want the re-issued %s", after.CertSHA256(), other.CertSHA256())
	}
	c, err := s.GetCertificate(nil)
	if err != nil || c.Leaf.VerifyHostname("fd00:1::1") != nil {
		t.Errorf("GetCertificate: %v", err)
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	id, _, err := Ensure(t.TempDir(), lanNames)
	if err != nil {
		t.Fatal(err)
	}
	fp := id.PublicKeySHA256()
	for _, in := range []string{fp, " " + fp + "\n", stripColons(fp)} {
		if got, err := NormalizeFingerprint(in); err != nil || got != fp {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "AB:CD", fp + ":00", "zz" + stripColons(fp)[2:]} {
		if _, err := NormalizeFingerprint(bad); err == nil {
			t.Errorf("NormalizeFingerprint(%q) accepted", bad)
		}
	}
}

func stripColons(s string) string {
	out := make([]byte, 0, len(s))
	for i := range len(s) {
		if s[i] != ':' {
			out = append(out, s[i]|0x20) // lower case, as people paste it
		}
	}
	return string(out)
}
