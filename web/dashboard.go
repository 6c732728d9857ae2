package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticURLs are the pages' static files by name (staticURL).
var staticURLs = map[string]string{"style.css": staticURL("style.css"), "local.js": staticURL("local.js")}

// pages parses each page with the shared layout.
func pages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, p := range []string{"overview", "hosts", "host", "rules", "settings", "log", "dns", "nat64", "login"} {
		out[p] = template.Must(template.New(p).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	return out
}

// staticURL is a static file's path with its content's hash, so that a
// browser that cached the file of an older firmware fetches the new one.
func staticURL(name string) string {
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		panic("web: no static file " + name)
	}
	sum := sha256.Sum256(b)
	return "/static/" + name + "?v=" + hex.EncodeToString(sum[:4])
}

// templateFuncs are the pages' helpers.
var templateFuncs = template.FuncMap{
	"static": func(name string) string { return staticURLs[name] },
	// when is a <time> element: the text is in UTC, and the page's script
	// shows it in the browser's zone; kind "t" shows the time of day, "d"
	// the date, anything else both.
	"when": func(t time.Time, kind string) template.HTML {
		if t.IsZero() {
			return "never"
		}
		format := "2006-01-02 15:04:05 UTC"
		switch kind {
		case "t":
			format = "15:04 UTC"
		case "d":
			format = "2006-01-02"
		}
		return template.HTML(fmt.Sprintf(`<time datetime="%s" data-f="%s">%s</time>`, t.UTC().Format(time.RFC3339), template.HTMLEscapeString(kind), t.UTC().Format(format)))
	},
	"join": strings.Join,
	// plus1 numbers rules from 1 for people.
	"plus1": func(i int) int { return i + 1 },
	// ruleFormData is a rule form's data: the rules' version, the fields
	// and a prefix for the inputs' ids.
	"ruleFormData": func(rev string, f ruleForm, id string) any {
		return struct {
			Rev  string
			Form ruleForm
			ID   string
		}{rev, f, id}
	},
}

type pageBase struct {
	Title, Page string
	Refresh     int
	// LoggedIn shows per-host details and the switches; Secure is an HTTPS
	// page; LoginURL is the login page on HTTPS ("" without HTTPS).
	LoggedIn, Secure bool
	LoginURL         string
	// KeySHA256 is the TLS public key's fingerprint, which the owner
	// compares with the serial console's log and the browser's.
	KeySHA256 string
}

// base is the layout's data for a page.
func (s *Server) base(r *http.Request, title, page string, refresh int) pageBase {
	return pageBase{Title: title, Page: page, Refresh: refresh, Secure: r.TLS != nil, LoginURL: s.loginURL(r, ""),
		LoggedIn: s.hasSession(r), KeySHA256: s.Identity().PublicKeySHA256()}
}

type rangeLink struct {
	Key, Label string
	Current    bool
}

// chartRanges map a ?range= value to a ring and how far back it shows.
var chartRanges = []struct {
	key, label, resolution string
	span                   time.Duration
}{
	{"1h", "1 hour", "10s", time.Hour},
	{"24h", "24 hours", "1m", 24 * time.Hour},
	{"7d", "7 days", "1h", 7 * 24 * time.Hour},
	{"90d", "90 days", "1h", 90 * 24 * time.Hour},
}

func pickRange(r *http.Request) (links []rangeLink, resolution string, step, span time.Duration) {
	want := r.URL.Query().Get("range")
	if want == "" {
		want = "24h"
	}
	idx := slices.IndexFunc(chartRanges, func(c struct {
		key, label, resolution string
		span                   time.Duration
	}) bool {
		return c.key == want
	})
	if idx < 0 {
		idx = 1
	}
	for i, c := range chartRanges {
		links = append(links, rangeLink{c.key, c.label, i == idx})
	}
	c := chartRanges[idx]
	for _, res := range series.DefaultResolutions {
		if res.Name == c.resolution {
			step = res.Step
		}
	}
	return links, c.resolution, step, c.span
}

type legendItem struct{ Label, Color string }

func legend() []legendItem {
	var out []legendItem
	for _, c := range categories {
		out = append(out, legendItem{c.Label, c.Color})
	}
	return out
}

func (s *Server) render(w http.ResponseWriter, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages[page].ExecuteTemplate(w, "layout", data); err != nil {
		s.log.Warn("rendering page failed", "page", page, "err", err)
	}
}

type hostView struct {
	// Name is the one in use (the owner's, else the announced one);
	// Announced is the host's own (DHCPv4 option 12/81).
	MAC, Name, Announced, Vendor string
	Kind                         hostKind
	Addrs                        []netip.Addr
	IPv4Lease                    string
	GotV6Only, CLAT              bool
	DNSSource                    string
	Traffic                      []trafficShare
	Split                        template.HTML
	TopLegacy                    []NameCount
	Policy                       state.HostPolicy
	FirstSeen                    time.Time
	LastSeen                     time.Time
	// Pinholes are the apps' open pinholes, one line each (pinholeLine).
	Pinholes []string
	// NameTaken is the name the host asked for that another host holds.
	NameTaken string
}

// hostKind is how far a host has gone towards IPv6-only, as the badge on
// its card says.
type hostKind struct{ Key, Label string }

func kindOf(h *state.Host, clat bool) hostKind {
	var v6 bool
	for a := range h.Addrs {
		v6 = v6 || a.Is6() && !a.Is4In6()
	}
	switch {
	case clat:
		// RFC 6877: the host is IPv6-only and translates its own IPv4.
		return hostKind{"clat", "IPv6-only with CLAT"}
	case h.GotV6OnlyPreferred:
		// RFC 8925: it asked for option 108 and gave up IPv4.
		return hostKind{"v6only", "IPv6-only (option 108)"}
	case h.IPv4Lease.IsValid() && v6:
		return hostKind{"dual", "dual-stack"}
	case h.IPv4Lease.IsValid():
		return hostKind{"legacy", "legacy IPv4-only"}
	case v6:
		return hostKind{"v6", "IPv6"}
	}
	return hostKind{"unknown", "no addresses yet"}
}

// trafficShare is one category of a host's traffic.
type trafficShare struct {
	Key, Label, Color, Bytes string
	Percent                  float64
}

func trafficShares(c series.Categories) []trafficShare {
	var out []trafficShare
	total := c.Total()
	for _, cat := range categories {
		if v := cat.value(c); v > 0 {
			out = append(out, trafficShare{cat.Key, cat.Label, cat.Color, humanBytes(v), 100 * float64(v) / float64(total)})
		}
	}
	return out
}

// splitBar draws a host's traffic split as a bar of category colours.
func splitBar(c series.Categories) template.HTML {
	total := c.Total()
	if total == 0 {
		return ""
	}
	var b strings.Builder
	for _, cat := range categories {
		if v := cat.value(c); v > 0 {
			fmt.Fprintf(&b, `<span style="width:%.2f%%;background:%s" title="%s: %s"></span>`, 100*float64(v)/float64(total), cat.Color, cat.Label, humanBytes(v))
		}
	}
	return template.HTML(b.String())
}

func dnsSource(sources map[string]uint64) string {
	var names []string
	for k, v := range sources {
		if v > 0 {
			names = append(names, fmt.Sprintf("%s (%d)", k, v))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// hostViews are the host cards; without details, only what GET /api/hosts
// tells anyone on the LAN (name, MAC, addresses).
func (s *Server) hostViews(details bool) []hostView {
	st := s.cfg.Backend.Snapshot()
	var ins Insights
	if details {
		ins = s.cfg.Backend.Insights()
	}
	var out []hostView
	for _, h := range st.Hosts {
		out = append(out, s.hostViewOf(h, ins.Hosts[h.MAC]))
	}
	slices.SortFunc(out, func(a, b hostView) int {
		if an, bn := a.Name != "", b.Name != ""; an != bn { // named hosts first
			if an {
				return -1
			}
			return 1
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return out
}

// hostViewOf is one host's card; hi is empty without details.
func (s *Server) hostViewOf(h *state.Host, hi HostInsights) hostView {
	hj := hostOf(h)
	mac, _ := net.ParseMAC(h.MAC)
	tr := hi.Traffic
	v := hostView{
		MAC: h.MAC, Name: hj.Hostname, Announced: h.Hostname, Vendor: s.oui.Vendor(mac), Kind: kindOf(h, hi.CLAT), Addrs: hj.Addrs, IPv4Lease: hj.IPv4Lease,
		GotV6Only: h.GotV6OnlyPreferred, CLAT: hi.CLAT, DNSSource: dnsSource(hi.DNSSources),
		Traffic: trafficShares(tr), Split: splitBar(tr), Policy: h.Policy,
		TopLegacy: hi.TopLegacy[:min(len(hi.TopLegacy), 3)], FirstSeen: h.FirstSeen, LastSeen: h.LastSeen,
		NameTaken: h.NameTaken,
	}
	for _, p := range hj.Pinholes {
		v.Pinholes = append(v.Pinholes, pinholeLine(p))
	}
	return v
}

// hosts lists the hosts; their traffic, DNS names and statistics, and the
// switches, only for a logged-in viewer.
func (s *Server) hosts(w http.ResponseWriter, r *http.Request) {
	details, ok := s.viewer(w, r)
	if !ok {
		return
	}
	b := s.base(r, "Hosts", "hosts", 0)
	b.LoggedIn = details
	s.render(w, "hosts", struct {
		pageBase
		Hosts []hostView
	}{b, s.hostViews(details)})
}

// dnsChart draws A, AAAA and synthesized answers over time with the
// traffic chart's machinery: each kind is mapped onto one band.
func dnsChart(points []series.Point, step time.Duration, f chartFrame) template.HTML {
	mapped := make([]series.Point, len(points))
	for i, p := range points {
		mapped[i] = series.Point{Start: p.Start, Total: series.Categories{
			NativeIPv6: p.DNS.AAAA - min(p.DNS.AAAA, p.DNS.Synthesized),
			NAT64DNS64: p.DNS.Synthesized,
			NAT44:      p.DNS.A,
		}}
	}
	f.Height, f.Label, f.Unit = 200, "DNS answers by kind", perMinute
	return stackedChart(mapped, step, f)
}

func (s *Server) dns(w http.ResponseWriter, r *http.Request) {
	links, res, step, span := pickRange(r)
	now := time.Now()
	points, _ := s.cfg.Backend.History().Series(res, now.Add(-span))
	frame := chartFrame{Start: now.Add(-span), End: now, Zone: zoneOf(r), Width: 900}
	s.render(w, "dns", struct {
		pageBase
		Ranges []rangeLink
		Chart  template.HTML
		Legend []legendItem
		DNS    DNSInsights
	}{s.base(r, "DNS", "dns", 30), links, dnsChart(points, step, frame),
		[]legendItem{{"AAAA (native)", categories[0].Color}, {"AAAA synthesized (DNS64)", categories[1].Color}, {"A", categories[3].Color}},
		s.cfg.Backend.Insights().DNS})
}

func (s *Server) nat64(w http.ResponseWriter, r *http.Request) {
	ins := s.cfg.Backend.Insights()
	use := 0.0
	if ins.NAT64.Capacity > 0 {
		use = 100 * float64(ins.NAT64.Sessions) / float64(ins.NAT64.Capacity)
	}
	s.render(w, "nat64", struct {
		pageBase
		NAT64    NAT64Insights
		TableUse float64
		High     int // the meter turns amber at 80 % of the table
		Firewall map[string]CounterValue
		Status   StatusJSON
	}{s.base(r, "NAT64", "nat64", 10), ins.NAT64, use, ins.NAT64.Capacity * 4 / 5, ins.Firewall, statusOf(s.cfg.Backend.Snapshot(), time.Now())})
}

func (s *Server) apiSeries(w http.ResponseWriter, r *http.Request) {
	res := r.URL.Query().Get("resolution")
	if res == "" {
		res = "1m"
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: %q is not an RFC 3339 time", v)
			return
		}
		since = t
	}
	get := s.cfg.Backend.History().Series
	switch v := r.URL.Query().Get("hosts"); v {
	case "", "0", "false":
	case "1", "true":
		details, ok := s.viewer(w, r)
		if !ok {
			return
		}
		if !details {
			w.Header().Set("WWW-Authenticate", `Basic realm="gizmo"`)
			writeError(w, http.StatusUnauthorized, "per-host series need the appliance password (log in, or HTTP basic auth over HTTPS)")
			return
		}
		get = s.cfg.Backend.History().HostSeries
	default:
		writeError(w, http.StatusBadRequest, "hosts: %q is not a boolean (1 or 0)", v)
		return
	}
	points, err := get(res, since)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v (resolutions: 10s, 1m, 1h)", err)
		return
	}
	writeJSON(w, http.StatusOK, points)
}

// apiInsights gives everyone the aggregates (nat64.sessions among them) and
// a logged-in viewer also the per-host part: which names each host looks
// up is the household's business.
func (s *Server) apiInsights(w http.ResponseWriter, r *http.Request) {
	details, ok := s.viewer(w, r)
	if !ok {
		return
	}
	ins := s.cfg.Backend.Insights()
	if !details {
		ins.Hosts = map[string]HostInsights{}
	}
	writeJSON(w, http.StatusOK, ins)
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}
