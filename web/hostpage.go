package web

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// loggedInPage lets a logged-in viewer through to an admin page and sends
// anyone else to the login page, which comes back here.
func (s *Server) loggedInPage(w http.ResponseWriter, r *http.Request) bool {
	details, ok := s.viewer(w, r)
	if !ok || details {
		return ok
	}
	target := s.loginURL(r, r.URL.RequestURI())
	if target == "" {
		http.Error(w, "this page needs a login over HTTPS, and this gizmo serves no HTTPS", http.StatusForbidden)
		return false
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return false
}

// loginURL is the login page, which comes back to next (none: ""). Over
// HTTP it is the HTTPS one, and "" while the gizmo serves no HTTPS.
func (s *Server) loginURL(r *http.Request, next string) string {
	login := &url.URL{Path: "/login"}
	if next != "" {
		login.RawQuery = url.Values{"next": {next}}.Encode()
	}
	if r.TLS != nil {
		return login.String()
	}
	r2 := *r
	r2.URL = login
	return s.httpsURL(&r2)
}

// adminBase is the layout's data for a page that only a logged-in viewer
// reaches (with a session or the password).
func (s *Server) adminBase(r *http.Request, title, page string) pageBase {
	b := s.base(r, title, page, 0)
	b.LoggedIn = true
	return b
}

// hostRanges are the spans of the per-host chart: the rings that keep each
// host's traffic (series.Resolution.HostLen).
var hostRanges = []struct {
	key, label, resolution string
	span                   time.Duration
}{
	{"1h", "1 hour", "10s", time.Hour},
	{"7d", "7 days", "1h", 7 * 24 * time.Hour},
}

// policyForm is the host page's form as shown: the policy's values, or
// what the owner typed when it was refused.
type policyForm struct {
	Hostname, IPv4, Ports                             string
	DNS64, V6OnlyPreferred, AppPinholes, LANReachable bool
}

func formOf(p state.HostPolicy) policyForm {
	f := policyForm{Hostname: p.Hostname, Ports: strings.Join(p.ExposedPorts, " "),
		DNS64: p.DNS64, V6OnlyPreferred: p.V6OnlyPreferred, AppPinholes: p.AppPinholes, LANReachable: p.LANReachable}
	if p.IPv4.IsValid() {
		f.IPv4 = p.IPv4.String()
	}
	return f
}

// reservation is another host's reserved address, for the form's hint.
type reservation struct {
	Addr      netip.Addr
	MAC, Name string
}

type hostPageData struct {
	pageBase
	Host   hostView
	Ranges []rangeLink
	Chart  template.HTML
	Legend []legendItem
	Form   policyForm
	Errors []string
	Saved  bool
	// Pool is the legacy DHCPv4 pool, "" without one; Taken are the other
	// hosts' reservations in it.
	Pool  string
	Taken []reservation
}

// hostPage is one host's details, its traffic over the last hour or 7
// days, and the owner's settings for it.
func (s *Server) hostPage(w http.ResponseWriter, r *http.Request) {
	if !s.loggedInPage(w, r) {
		return
	}
	mac, ok := pathMAC(w, r)
	if !ok {
		return
	}
	st := s.cfg.Backend.Snapshot()
	h, ok := st.Hosts[mac]
	if !ok {
		http.Error(w, fmt.Sprintf("no host with MAC %s (it may not have been seen since the gizmo started)", mac), http.StatusNotFound)
		return
	}
	s.renderHostPage(w, r, http.StatusOK, st, h, formOf(h.Policy), nil)
}

func (s *Server) renderHostPage(w http.ResponseWriter, r *http.Request, code int, st state.State, h *state.Host, form policyForm, errs []string) {
	now := time.Now()
	want := r.URL.Query().Get("range")
	idx := max(0, slices.IndexFunc(hostRanges, func(c struct {
		key, label, resolution string
		span                   time.Duration
	}) bool {
		return c.key == want
	}))
	if want == "" {
		idx = len(hostRanges) - 1
	}
	var links []rangeLink
	for i, c := range hostRanges {
		links = append(links, rangeLink{c.key, c.label, i == idx})
	}
	rg := hostRanges[idx]
	step := time.Hour
	if rg.resolution == "10s" {
		step = 10 * time.Second
	}
	points, _ := s.cfg.Backend.History().HostPoints(rg.resolution, h.MAC, now.Add(-rg.span))
	chart := stackedChart(points, step, chartFrame{Start: now.Add(-rg.span), End: now, Zone: zoneOf(r), Width: 900, Height: 200,
		Label: "traffic of " + cmp.Or(h.Policy.Hostname, h.Hostname, h.MAC) + " by category", Unit: humanRate})

	f := s.cfg.Backend.Findings()
	data := hostPageData{
		pageBase: s.adminBase(r, cmp.Or(h.Policy.Hostname, h.Hostname, h.MAC), "hosts"),
		Host:     s.hostViewOf(h, s.cfg.Backend.Insights().Hosts[h.MAC]),
		Ranges:   links, Chart: chart, Legend: legend(), Form: form, Errors: errs,
		Saved: r.URL.Query().Get("saved") == "1" && code == http.StatusOK,
	}
	if f.PoolStart.IsValid() {
		data.Pool = f.PoolStart.String() + " – " + f.PoolEnd.String()
	}
	for _, mac := range slices.Sorted(maps.Keys(st.Hosts)) {
		o := st.Hosts[mac]
		if mac != h.MAC && o.Policy.IPv4.IsValid() {
			data.Taken = append(data.Taken, reservation{o.Policy.IPv4, mac, cmp.Or(o.Policy.Hostname, o.Hostname)})
		}
	}
	for mac, rec := range st.Remembered {
		if rec.Policy.IPv4.IsValid() {
			data.Taken = append(data.Taken, reservation{rec.Policy.IPv4, mac, cmp.Or(rec.Policy.Hostname, rec.Hostname)})
		}
	}
	slices.SortFunc(data.Taken, func(a, b reservation) int { return a.Addr.Compare(b.Addr) })
	w.WriteHeader(code)
	s.render(w, "host", data)
}

// pathMAC is the {mac} of the path in the state's form, or a 400.
func pathMAC(w http.ResponseWriter, r *http.Request) (string, bool) {
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, fmt.Sprintf("%q is not a MAC address", r.PathValue("mac")), http.StatusBadRequest)
		return "", false
	}
	return hw.String(), true
}

// policyFields are the fields the policy form may send; "from" says which
// page to return to.
var policyFields = []string{"dns64", "v6only_preferred", "app_pinholes", "lan_reachable", "hostname", "ipv4", "exposed_ports", "from"}

// policyFromForm applies a form to the current policy. A field that is
// present is set, one that is left out keeps its value, so that the host
// list's two switches and the host page's full form share one handler. A
// checkbox comes as a hidden "off" followed by the box's "on" when it is
// ticked: the last value counts. It returns the form as typed, for the
// page that shows what was refused.
func policyFromForm(form url.Values, current state.HostPolicy) (state.HostPolicy, policyForm, []string) {
	p := current
	shown := formOf(current)
	var errs []string
	last := func(k string) (string, bool) {
		v := form[k]
		if len(v) == 0 {
			return "", false
		}
		return v[len(v)-1], true
	}
	for _, b := range []struct {
		key         string
		policy, box *bool
	}{
		{"dns64", &p.DNS64, &shown.DNS64},
		{"v6only_preferred", &p.V6OnlyPreferred, &shown.V6OnlyPreferred},
		{"app_pinholes", &p.AppPinholes, &shown.AppPinholes},
		{"lan_reachable", &p.LANReachable, &shown.LANReachable},
	} {
		if v, ok := last(b.key); ok {
			*b.policy, *b.box = v == "on", v == "on"
		}
	}
	if v, ok := last("hostname"); ok {
		v = strings.TrimSpace(v)
		shown.Hostname = v
		if err := validHostname(v); err != nil {
			errs = append(errs, "Name: "+strings.TrimPrefix(err.Error(), "policy: "))
		} else {
			p.Hostname = v
		}
	}
	if v, ok := last("ipv4"); ok {
		v = strings.TrimSpace(v)
		shown.IPv4 = v
		switch a, err := netip.ParseAddr(v); {
		case v == "":
			p.IPv4 = netip.Addr{}
		case err != nil || !a.Is4():
			errs = append(errs, fmt.Sprintf("IPv4 reservation: %q is not an IPv4 address like 192.168.64.20", v))
		default:
			p.IPv4 = a
		}
	}
	if v, ok := last("exposed_ports"); ok {
		shown.Ports = v
		p.ExposedPorts = strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if len(p.ExposedPorts) == 0 {
			p.ExposedPorts = nil
		}
	}
	return p, shown, errs
}

// readForm reads a posted form of at most maxPolicyBody bytes with no
// fields but the named ones, and answers 400 Bad Request otherwise.
func readForm(w http.ResponseWriter, r *http.Request, fields ...string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return false
	}
	for k := range r.PostForm {
		if !slices.Contains(fields, k) {
			http.Error(w, fmt.Sprintf("unknown field %q", k), http.StatusBadRequest)
			return false
		}
	}
	return true
}

// formPolicy handles the policy forms of the host list and the host page:
// plain HTML forms that work without JavaScript, with the login session's
// cookie. A refused edit shows the host page again with what was typed
// and why it was refused.
func (s *Server) formPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing a policy") {
		return
	}
	mac, ok := pathMAC(w, r)
	if !ok {
		return
	}
	if !readForm(w, r, policyFields...) {
		return
	}
	st := s.cfg.Backend.Snapshot()
	h, known := st.Hosts[mac]
	current := state.DefaultHostPolicy()
	if known {
		current = h.Policy
	}
	p, shown, errs := policyFromForm(r.PostForm, current)
	if len(errs) == 0 {
		if err := s.cfg.Backend.SetPolicy(mac, p); err != nil {
			if !errors.Is(err, ErrInvalid) {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			errs = strings.Split(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "), "\n")
		}
	}
	if len(errs) > 0 {
		if !known {
			http.Error(w, strings.Join(errs, "\n"), http.StatusBadRequest)
			return
		}
		s.renderHostPage(w, r, http.StatusBadRequest, st, h, shown, errs)
		return
	}
	s.log.Info("policy changed", "mac", mac, "dns64", p.DNS64, "v6only_preferred", p.V6OnlyPreferred, "app_pinholes", p.AppPinholes,
		"lan_reachable", p.LANReachable, "hostname", p.Hostname, "ipv4", p.IPv4, "exposed_ports", strings.Join(p.ExposedPorts, " "))
	if r.PostForm.Get("from") == "host" {
		http.Redirect(w, r, "/hosts/"+mac+"?saved=1#settings", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/hosts#h-"+mac, http.StatusSeeOther)
}
