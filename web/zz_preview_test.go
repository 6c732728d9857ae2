package web

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

func TestZZPreview(t *testing.T) {
	if os.Getenv("PREVIEW") == "" {
		t.Skip()
	}
	s, b := newTestServer(t)
	withTraffic(b)
	now := time.Now()
	b.st.Hosts["02:00:00:00:02:20"] = &state.Host{MAC: "02:00:00:00:02:20", Hostname: "lan-legacy", IPv4Lease: netip.MustParseAddr("203.0.113.150"), Policy: state.DefaultHostPolicy()}
	b.st.Hosts["00:1b:21:00:02:30"] = &state.Host{MAC: "00:1b:21:00:02:30", Policy: state.DefaultHostPolicy(), Addrs: map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000:100::ff:fe00:230"): now, netip.MustParseAddr("2001:db8:1000:100:1234:5678:9abc:def0"): now, netip.MustParseAddr("fe80::ff:fe00:230"): now}}
	b.insights.Hosts["02:00:00:00:02:20"] = HostInsights{Traffic: series.Categories{NAT44: 150000}, DNSSources: map[string]uint64{"dhcpv4": 3}}
	b.insights.Hosts["00:1b:21:00:02:30"] = HostInsights{Traffic: series.Categories{NAT64CLAT: 50000, NativeIPv6: 20000}, CLAT: true, ExposedPorts: []string{"tcp/22", "tcp/443"}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go http.Serve(ln, s.Handler())
	base := "http://" + ln.Addr().String()
	actx, c1 := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath("/usr/bin/chromium"), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-proxy-server", true))
	defer c1()
	bctx, c2 := chromedp.NewContext(actx)
	defer c2()
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("g:secret"))}})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	card := chromedp.CSS(`article[data-mac="02:00:00:00:02:20"]`)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/hosts"), chromedp.WaitReady(chromedp.CSS("footer")), chromedp.Click(card+" input[name=dns64]"), chromedp.Click(card+" button[type=submit]")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		loc, err := chromedp.Run(bctx, chromedp.Location())
		t.Log(loc, err)
		if strings.HasSuffix(loc, "#h-02:00:00:00:02:20") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("policy now %+v", b.Snapshot().Hosts["02:00:00:00:02:20"].Policy)
	for _, w := range []int64{1280, 390} {
		for _, p := range []string{"/?range=1h", "/hosts", "/dns?range=1h", "/nat64"} {
			opts := []chromedp.EmulateViewportOption{}
			if w == 390 {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
			}
			if err := chromedp.Do(bctx, chromedp.EmulateViewport(w, 800, opts...), chromedp.Navigate(base+p), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(fmt.Sprintf("/tmp/preview/%d%s.png", w, map[string]string{"/?range=1h": "overview", "/hosts": "hosts", "/dns?range=1h": "dns", "/nat64": "nat64"}[p]), png, 0o644)
		}
	}
}
