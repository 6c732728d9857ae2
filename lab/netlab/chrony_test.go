package netlab

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"

	"github.com/beevik/ntp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
)

// The ISP's time service, under scratch namespace names (no lab lock
// needed): chrony answers on both WAN-link addresses with the stratum of
// its configuration, and Kea, with the lab's own configurations, names it
// in DHCPv4 option 42 and DHCPv6 option 56 to a client on the gizmo's
// side of the link.
func TestISPTimeService(t *testing.T) {
	testns.NeedRoot(t)
	for _, bin := range []string{"chronyd", "kea-dhcp4", "kea-dhcp6"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prefix := scratchTopology(t, ctx, "ntp")
	isp, gz := prefix+NSISP, prefix+NSGizmo
	// The gizmo's WAN addresses come from SLAAC and DHCPv4 in the lab;
	// here they are static.
	for _, a := range []string{"2001:db8:0:1::99/64", "192.0.2.99/24"} {
		if out, err := Exec(ctx, gz, "ip", "addr", "add", a, "dev", GizmoWAN); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}

	dir := t.TempDir()
	start := func(name string, argv []string, env ...string) {
		t.Helper()
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", append([]string{"netns", "exec", isp}, argv...)...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			logf.Close()
		})
	}
	logOf := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		return string(b)
	}

	cdir := filepath.Join(dir, "chrony")
	os.MkdirAll(cdir, 0o755)
	conf := filepath.Join(cdir, "chrony.conf")
	if err := os.WriteFile(conf, []byte(chronyConf(cdir)), 0o644); err != nil {
		t.Fatal(err)
	}
	start("chrony", []string{"chronyd", "-x", "-d", "-u", "root", "-f", conf})

	for _, a := range []netip.Addr{ISPWAN6, ISPWAN4} {
		var r *ntp.Response
		err := WaitFor(ctx, "chrony on "+a.String(), func(context.Context) (bool, error) {
			var err error
			r, err = ntp.QueryWithOptions(netip.AddrPortFrom(a, 123).String(), ntp.QueryOptions{
				Timeout: time.Second,
				Dialer:  func(_, remote string) (net.Conn, error) { return DialContext(ctx, gz, "udp", remote) },
			})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("%v\nchrony:\n%s", err, logOf("chrony"))
		}
		if err := r.Validate(); err != nil || r.Stratum != 8 || r.ClockOffset.Abs() > 100*time.Millisecond {
			t.Errorf("chrony on %s: stratum %d offset %v validate %v; want 8, about 0, valid", a, r.Stratum, r.ClockOffset, err)
		}
	}

	// Kea, with the lab's configurations.
	k6, k4 := kea6Paths(filepath.Join(dir, "run")), kea4Paths(filepath.Join(dir, "run"))
	for _, k := range []struct {
		name, bin string
		p         keaPaths
		conf      func() ([]byte, error)
	}{
		{"kea6", "kea-dhcp6", k6, func() ([]byte, error) { return kea6Conf(k6, PDPoolA, Lifetimes{}.withDefaults()) }},
		{"kea4", "kea-dhcp4", k4, func() ([]byte, error) { return kea4Conf(k4, Lifetimes{}.withDefaults()) }},
	} {
		os.MkdirAll(k.p.dir, 0o755)
		b, err := k.conf()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(k.p.dir, k.name+".conf")
		os.WriteFile(path, b, 0o644)
		start(k.name, []string{k.bin, "-c", path}, "KEA_PIDFILE_DIR="+k.p.dir, "KEA_LOCKFILE_DIR="+k.p.dir)
		if err := WaitFor(ctx, k.name, func(ctx context.Context) (bool, error) {
			return keaCommand(ctx, k.p.socket, "list-commands") == nil, nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, logOf(k.name))
		}
	}

	// DHCPv6 Information-request asking for OPTION_NTP_SERVER (RFC 5908 §4).
	var ntp6 []net.IP
	err := WaitFor(ctx, "Kea's DHCPv6 reply", func(ctx context.Context) (bool, error) {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		defer rcancel()
		var reply *dhcpv6.Message
		err := InNamespace(gz, func() error {
			c, err := nclient6.New(GizmoWAN)
			if err != nil {
				return err
			}
			defer c.Close()
			ifi, err := net.InterfaceByName(GizmoWAN)
			if err != nil {
				return err
			}
			msg, err := dhcpv6.NewMessage()
			if err != nil {
				return err
			}
			msg.MessageType = dhcpv6.MessageTypeInformationRequest
			msg.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: ifi.HardwareAddr}))
			msg.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionNTPServer, dhcpv6.OptionDNSRecursiveNameServer))
			msg.AddOption(dhcpv6.OptElapsedTime(0))
			reply, err = c.SendAndRead(rctx, nclient6.AllDHCPRelayAgentsAndServers, msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
			return err
		})
		if err != nil {
			return false, nil
		}
		ntp6 = reply.Options.NTPServers()
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v\nkea6:\n%s", err, logOf("kea6"))
	}
	if len(ntp6) != 1 || !ntp6[0].Equal(ISPWAN6.AsSlice()) {
		t.Errorf("DHCPv6 option 56 servers %v, want [%s]", ntp6, ISPWAN6)
	}

	// DHCPv4 DISCOVER asking for option 42 (RFC 2132 §8.3).
	offer, err := WaitDHCPv4Offer(ctx, gz, GizmoWAN, dhcpv4.OptionNTPServers)
	if err != nil {
		t.Fatalf("%v\nkea4:\n%s", err, logOf("kea4"))
	}
	if got := offer.NTPServers(); len(got) != 1 || !got[0].Equal(ISPWAN4.AsSlice()) {
		t.Errorf("DHCPv4 option 42 servers %v, want [%s]", got, ISPWAN4)
	}
}

// The configurations name the ISP's NTP server; chrony listens on the WAN
// link only and never sets the clock.
func TestTimeServiceConfigs(t *testing.T) {
	c := chronyConf("/run/x/chrony")
	for _, want := range []string{"local stratum 8", "allow all", "bindaddress " + ISPWAN6.String(), "bindaddress " + ISPWAN4.String(), "cmdport 0", "bindcmdaddress /"} {
		if !strings.Contains(c, want+"\n") {
			t.Errorf("chrony.conf lacks %q:\n%s", want, c)
		}
	}
	b, err := kea4Conf(kea4Paths("/run/x"), Lifetimes{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var k4 struct {
		Dhcp4 struct {
			Subnet4 []struct {
				OptionData []map[string]any `json:"option-data"`
			}
		}
	}
	if err := json.Unmarshal(b, &k4); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range k4.Dhcp4.Subnet4[0].OptionData {
		found = found || o["name"] == "ntp-servers" && o["data"] == ISPWAN4.String()
	}
	if !found {
		t.Errorf("kea4 does not announce ntp-servers %s", ISPWAN4)
	}
}
