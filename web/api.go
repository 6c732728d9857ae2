package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", s.apiStatus)
	mux.HandleFunc("GET /api/hosts", s.apiHosts)
	mux.HandleFunc("GET /api/hosts/{mac}", s.apiHost)
	mux.HandleFunc("GET /api/hosts/{mac}/policy", s.apiGetPolicy)
	mux.HandleFunc("PUT /api/hosts/{mac}/policy", s.apiPutPolicy)
	mux.HandleFunc("GET /api/firewall/rules", s.apiGetRules)
	mux.HandleFunc("PUT /api/firewall/rules", s.apiPutRules)
	mux.HandleFunc("POST /api/roles", s.apiPostRoles)
	mux.HandleFunc("GET /api/series", s.apiSeries)
	mux.HandleFunc("GET /api/insights", s.apiInsights)
	mux.HandleFunc("GET /api/settings", s.apiGetSettings)
	mux.HandleFunc("PUT /api/settings", s.apiPutSettings)
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /hosts", s.hosts)
	mux.HandleFunc("GET /hosts/{mac}", s.hostPage)
	mux.HandleFunc("POST /hosts/{mac}/policy", s.formPolicy)
	mux.HandleFunc("GET /rules", s.rulesPage)
	mux.HandleFunc("POST /rules", s.formRules)
	mux.HandleFunc("POST /rules/{i}", s.formRules)
	mux.HandleFunc("POST /rules/{i}/delete", s.formRules)
	mux.HandleFunc("GET /settings", s.settingsPage)
	mux.HandleFunc("GET /settings/backup", s.backup)
	mux.HandleFunc("POST /settings/restore", s.formRestore)
	mux.HandleFunc("POST /settings/wan-vlan", s.formWANVLAN)
	mux.HandleFunc("GET /log", s.logPage)
	mux.HandleFunc("GET /dns", s.dns)
	mux.HandleFunc("GET /nat64", s.nat64)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.Handle("GET /static/", staticHandler())
	mux.Handle("GET /metrics", s.metricsHandler())
	return s.guard(mux)
}

// StatusJSON is the body of GET /api/status.
type StatusJSON struct {
	WAN          WANJSON      `json:"wan"`
	Delegated    *PrefixJSON  `json:"delegated_prefix"`
	Retired      []PrefixJSON `json:"retired_prefixes"`
	Pref64       string       `json:"pref64"`
	Pref64Source string       `json:"pref64_source"`
	// Deployment is what the gizmo detected it is plugged into
	// (docs/deployments.md).
	Deployment string `json:"deployment"`
	// Line is what the ISP's line carries: dual-stack, ipv4-only,
	// ipv6-only-nat64, ipv6-only (no IPv4 at all), ds-lite or unknown.
	Line string `json:"line"`
	// DSLite is the softwire to the ISP's AFTR (RFC 6333) while the line
	// is DS-Lite.
	DSLite *DSLiteJSON `json:"dslite,omitempty"`
	// CLAT is what the gizmo's CLAT translates between, while it runs.
	CLAT *CLATJSON `json:"clat,omitempty"`
	// Roles: how the ports got their roles and when they were last
	// re-evaluated; absent when -wan/-lan were given.
	Roles       *RolesJSON `json:"roles,omitempty"`
	UpstreamDNS []string   `json:"upstream_dns"`
	ULA         string     `json:"ula"`
	LAN         LANJSON    `json:"lan"`
	Hosts       int        `json:"hosts"`
	// HostTable is the host table's bound and what it did: the
	// dashboard says "host table full" from it.
	HostTable HostTableJSON `json:"host_table"`
	Time      time.Time     `json:"time"`
	// Internet is the one-line "Internet OK / what is wrong".
	Internet *Internet `json:"internet,omitempty"`
	// Clock says whether Time can be trusted: a board without a real-time
	// clock starts at its image's build time until NTP sets it.
	Clock ClockJSON `json:"clock"`
	// Fastpath says whether the eBPF fast path carries established IPv6
	// flows, and if not, why; absent on an existing network.
	Fastpath *FastpathJSON `json:"fastpath,omitempty"`
}

// FastpathJSON is Findings.Fastpath with its line.
type FastpathJSON struct {
	On   bool   `json:"on"`
	Off  string `json:"off,omitempty"`
	Line string `json:"line"`
}

// HostTableJSON is the host table's account (state.HostTableStats).
type HostTableJSON struct {
	Hosts    int  `json:"hosts"`
	Capacity int  `json:"capacity"`
	Full     bool `json:"full"`
	// Evicted and Refused count hosts dropped for a newcomer and
	// newcomers turned away; NameTaken the hosts that asked for a name
	// another host holds.
	Evicted   uint64 `json:"evicted"`
	Refused   uint64 `json:"refused"`
	NameTaken int    `json:"name_taken"`
}

// ClockJSON is whether the gizmo's clock is synchronised with NTP in this
// run, from which server, and when last (state.Clock).
type ClockJSON struct {
	Synced   bool      `json:"synced"`
	Source   string    `json:"source,omitempty"`
	LastSync time.Time `json:"last_sync,omitzero"`
}

// DSLiteJSON names the AFTR (RFC 6334) and its address.
type DSLiteJSON struct {
	AFTRName string `json:"aftr_name"`
	AFTR     string `json:"aftr"`
}

// CLATJSON is the CLAT's translation (RFC 6877): the legacy hosts' IPv4
// leaves from Address towards the ISP's NAT64 prefix.
type CLATJSON struct {
	Address string `json:"address"`
	Pref64  string `json:"pref64"`
}

// lineTexts say what each line kind means for the household.
var lineTexts = map[state.Line]string{
	state.LineDualStack:     "IPv6 and IPv4 (dual-stack)",
	state.LineIPv4Only:      "IPv4 only: the LAN's IPv6 is the gizmo's own, IPv4 sites through its NAT64",
	state.LineIPv6OnlyNAT64: "IPv6 only, with the ISP's NAT64: legacy IPv4 hosts get through the gizmo's CLAT",
	state.LineIPv6Only:      "This line has no IPv4: IPv4-only sites are unreachable",
	state.LineDSLite:        "IPv6, with IPv4 tunnelled to the ISP (DS-Lite)",
}

// LineText is the line kind in words, for the overview.
func (s StatusJSON) LineText() string {
	if d := s.DSLite; d != nil && state.Line(s.Line) == state.LineDSLite {
		return "DS-Lite (AFTR " + d.AFTRName + ")"
	}
	if t, ok := lineTexts[state.Line(s.Line)]; ok {
		return t
	}
	return "Not known yet"
}

// RolesJSON is the role detection's account (state.RolesStatus).
type RolesJSON struct {
	WANPort  string   `json:"wan_port"`
	LANPorts []string `json:"lan_ports"`
	// WANVLAN is the 802.1Q VLAN ID of the WAN (0: untagged) and
	// WANVLANFrom where it came from: "detected", "dashboard" or "flag".
	WANVLAN     uint16    `json:"wan_vlan,omitempty"`
	WANVLANFrom string    `json:"wan_vlan_from,omitempty"`
	Since       time.Time `json:"since"`
	Reason      string    `json:"reason"`
	EvaluatedAt time.Time `json:"evaluated_at,omitzero"`
	Evaluation  string    `json:"evaluation,omitempty"`
	Changes     int       `json:"changes"`
	// Pinned: the WAN carried a delegation or a DHCPv4 lease (or the
	// owner chose it); nothing heard on a LAN port moves its role.
	Pinned bool `json:"pinned"`
	// RogueUpstream is the last upstream server heard on a LAN port.
	RogueUpstream *RogueJSON `json:"rogue_upstream,omitempty"`
}

// RogueJSON is an upstream heard on a LAN port (state.RogueUpstream).
type RogueJSON struct {
	Port      string    `json:"port"`
	Kind      string    `json:"kind"` // RA, DHCPv4, DHCPv6
	At        time.Time `json:"at"`
	SourceMAC string    `json:"source_mac"`
	Source    string    `json:"source,omitempty"`
}

type WANJSON struct {
	Interface string `json:"interface"`
	// VLAN is the 802.1Q VLAN ID the uplink is on (0: untagged), VLANFrom
	// where it came from, VLANError why it could not be applied.
	VLAN      uint16   `json:"vlan,omitempty"`
	VLANFrom  string   `json:"vlan_from,omitempty"`
	VLANError string   `json:"vlan_error,omitempty"`
	Addrs     []string `json:"addrs"`
	Router    string   `json:"router,omitempty"`
	IPv4      string   `json:"ipv4,omitempty"`
	RDNSS     []string `json:"rdnss"`
}

type LANJSON struct {
	Interface string            `json:"interface"`
	LinkLocal string            `json:"link_local,omitempty"`
	Legacy4   string            `json:"legacy_ipv4"`
	DNS       map[string]string `json:"dns_listen"`
}

type PrefixJSON struct {
	Prefix           string `json:"prefix"`
	PreferredSeconds int64  `json:"preferred_seconds"`
	ValidSeconds     int64  `json:"valid_seconds"`
}

// HostJSON is one host in GET /api/hosts.
type HostJSON struct {
	MAC                string           `json:"mac"`
	Hostname           string           `json:"hostname,omitempty"`
	Addrs              []netip.Addr     `json:"addrs"`
	IPv4Lease          string           `json:"ipv4_lease,omitempty"`
	GotV6OnlyPreferred bool             `json:"got_v6only_preferred"`
	Policy             state.HostPolicy `json:"policy"`
	FirstSeen          time.Time        `json:"first_seen"`
	LastSeen           time.Time        `json:"last_seen"`
	// NameTaken is the name the host asked for that another host holds:
	// it has none in home.arpa.
	NameTaken string `json:"name_taken,omitempty"`
	// Pinholes are the inbound ports apps on the host opened (UPnP).
	Pinholes []PinholeJSON `json:"pinholes"`
}

func strs[T fmt.Stringer](xs []T) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.String())
	}
	return out
}

// str is a prefix or address as text, or "" when it is not set (rather
// than "invalid Prefix").
func str[T interface {
	IsValid() bool
	String() string
}](v T) string {
	if !v.IsValid() {
		return ""
	}
	return v.String()
}

func prefixJSON(d state.DelegatedPrefix, now time.Time) PrefixJSON {
	p, v := d.Remaining(now)
	return PrefixJSON{Prefix: d.Prefix.String(), PreferredSeconds: int64(p.Seconds()), ValidSeconds: int64(v.Seconds())}
}

func statusOf(st state.State, now time.Time) StatusJSON {
	out := StatusJSON{
		WAN:    WANJSON{Interface: st.WAN.Interface, Addrs: strs(st.WAN.Addrs), RDNSS: strs(st.WAN.RDNSS)},
		Pref64: str(st.Pref64), Pref64Source: string(st.Pref64Source), Deployment: st.Deployment, Line: string(st.Line),
		UpstreamDNS: strs(st.UpstreamDNS), ULA: str(st.ULA),
		LAN: LANJSON{Interface: st.LAN.Interface, Legacy4: str(st.LAN.Legacy4), DNS: map[string]string{
			"rdnss": str(st.LAN.DNS.RDNSS), "dhcpv6": str(st.LAN.DNS.DHCPv6), "dhcpv4": str(st.LAN.DNS.DHCPv4),
		}},
		Retired: []PrefixJSON{},
		Hosts:   len(st.Hosts),
		HostTable: HostTableJSON{Hosts: len(st.Hosts), Capacity: st.HostTable.Capacity,
			Full:    st.HostTable.Capacity > 0 && len(st.Hosts) >= st.HostTable.Capacity,
			Evicted: st.HostTable.Evicted, Refused: st.HostTable.Refused},
		Time:  now,
		Clock: ClockJSON{Synced: st.Clock.Synced, Source: st.Clock.Source, LastSync: st.Clock.LastSync},
	}
	for _, h := range st.Hosts {
		if h.NameTaken != "" {
			out.HostTable.NameTaken++
		}
	}
	if r := st.Roles; r.Detected {
		out.Roles = &RolesJSON{WANPort: r.WANPort, LANPorts: append([]string{}, r.LANPorts...), Since: r.Since, Reason: r.Reason,
			EvaluatedAt: r.EvaluatedAt, Evaluation: r.Evaluation, Changes: r.Changes, Pinned: r.Pinned}
		if g := r.Rogue; g != nil {
			out.Roles.RogueUpstream = &RogueJSON{Port: g.Port, Kind: g.Kind, At: g.At, SourceMAC: g.SourceMAC, Source: str(g.Source)}
		}
	}
	if st.WAN.Router.IsValid() {
		out.WAN.Router = st.WAN.Router.String()
	}
	out.WAN.VLAN, out.WAN.VLANFrom, out.WAN.VLANError = st.Roles.WANVLAN, st.Roles.WANVLANFrom, st.Roles.WANVLANError
	if out.Roles != nil {
		out.Roles.WANVLAN, out.Roles.WANVLANFrom = st.Roles.WANVLAN, st.Roles.WANVLANFrom
	}
	if st.Line == state.LineDSLite {
		out.DSLite = &DSLiteJSON{AFTRName: st.WAN.AFTRName, AFTR: str(st.WAN.AFTR)}
	}
	if c := st.CLAT; c.Address.IsValid() {
		out.CLAT = &CLATJSON{Address: c.Address.String(), Pref64: str(c.Pref64)}
	}
	if st.WAN.IPv4 != nil {
		out.WAN.IPv4 = st.WAN.IPv4.Addr.String()
	}
	if st.LAN.LinkLocal.IsValid() {
		out.LAN.LinkLocal = st.LAN.LinkLocal.String()
	}
	if st.Delegated != nil {
		p := prefixJSON(*st.Delegated, now)
		out.Delegated = &p
	}
	for _, r := range st.Retired {
		out.Retired = append(out.Retired, prefixJSON(r, now))
	}
	return out
}

func hostOf(h *state.Host) HostJSON {
	addrs := make([]netip.Addr, 0, len(h.Addrs))
	for a := range h.Addrs {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	out := HostJSON{MAC: h.MAC, Hostname: h.Hostname, Addrs: addrs, GotV6OnlyPreferred: h.GotV6OnlyPreferred,
		Policy: h.Policy, FirstSeen: h.FirstSeen, LastSeen: h.LastSeen, Pinholes: pinholesOf(h.Pinholes, time.Now()),
		NameTaken: h.NameTaken}
	if h.Policy.Hostname != "" {
		out.Hostname = h.Policy.Hostname
	}
	if h.IPv4Lease.IsValid() {
		out.IPv4Lease = h.IPv4Lease.String()
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	out := statusOf(s.cfg.Backend.Snapshot(), time.Now())
	f := s.cfg.Backend.Findings()
	out.Internet = &f.Internet
	if fp := f.Fastpath; fp != nil {
		out.Fastpath = &FastpathJSON{On: fp.On, Off: fp.Off, Line: fp.Line()}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiHosts(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Snapshot()
	out := make([]HostJSON, 0, len(st.Hosts))
	for _, h := range st.Hosts {
		out = append(out, hostOf(h))
	}
	slices.SortFunc(out, func(a, b HostJSON) int { return strings.Compare(a.MAC, b.MAC) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) lookupHost(w http.ResponseWriter, r *http.Request) (*state.Host, bool) {
	mac := strings.ToLower(r.PathValue("mac"))
	h, ok := s.cfg.Backend.Snapshot().Hosts[mac]
	if !ok {
		writeError(w, http.StatusNotFound, "no host with MAC %q", mac)
	}
	return h, ok
}

func (s *Server) apiHost(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.lookupHost(w, r); ok {
		writeJSON(w, http.StatusOK, hostOf(h))
	}
}

func (s *Server) apiGetPolicy(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.lookupHost(w, r); ok {
		writeJSON(w, http.StatusOK, h.Policy)
	}
}

// maxPolicyBody bounds the request body: a policy is a few dozen bytes.
const maxPolicyBody = 4096

// DecodePolicy applies a policy edit to the current policy. The edit is a
// JSON object with any of the fields below; fields it leaves out keep their
// value. Unknown fields are errors, so that a typo cannot silently leave a
// switch as it was.
func DecodePolicy(r io.Reader, current state.HostPolicy) (state.HostPolicy, error) {
	var in struct {
		DNS64           *bool       `json:"dns64"`
		V6OnlyPreferred *bool       `json:"v6only_preferred"`
		Hostname        *string     `json:"hostname"`
		IPv4            *netip.Addr `json:"ipv4"`
		ExposedPorts    *[]string   `json:"exposed_ports"`
		AppPinholes     *bool       `json:"app_pinholes"`
		LANReachable    *bool       `json:"lan_reachable"`
	}
	dec := json.NewDecoder(io.LimitReader(r, maxPolicyBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return current, fmt.Errorf("policy: %w", err)
	}
	if dec.More() {
		return current, errors.New("policy: trailing data after the JSON object")
	}
	p := current
	if in.DNS64 != nil {
		p.DNS64 = *in.DNS64
	}
	if in.V6OnlyPreferred != nil {
		p.V6OnlyPreferred = *in.V6OnlyPreferred
	}
	if in.Hostname != nil {
		if err := validHostname(*in.Hostname); err != nil {
			return current, err
		}
		p.Hostname = *in.Hostname
	}
	if in.IPv4 != nil {
		if in.IPv4.IsValid() && !in.IPv4.Is4() {
			return current, fmt.Errorf("policy: ipv4 %s is not an IPv4 address", in.IPv4)
		}
		p.IPv4 = *in.IPv4
	}
	if in.ExposedPorts != nil {
		p.ExposedPorts = *in.ExposedPorts
	}
	if in.AppPinholes != nil {
		p.AppPinholes = *in.AppPinholes
	}
	if in.LANReachable != nil {
		p.LANReachable = *in.LANReachable
	}
	return p, nil
}

// ErrInvalid is wrapped by Backend errors for edits that are well-formed
// but not acceptable (a port out of range, an address outside the pool):
// the API answers 400 and the old configuration stays in place.
var ErrInvalid = errors.New("invalid")

// validHostname accepts a single DNS label (RFC 1123 §2.1), or nothing.
func validHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > 63 {
		return fmt.Errorf("policy: hostname %q is longer than 63 characters", h)
	}
	for i, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(h)-1
		if !ok {
			return fmt.Errorf("policy: hostname %q: only letters, digits and inner hyphens (RFC 1123)", h)
		}
	}
	return nil
}

func (s *Server) apiPutPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing a policy") {
		return
	}
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		writeError(w, http.StatusBadRequest, "%q is not a MAC address", r.PathValue("mac"))
		return
	}
	mac := hw.String()
	current := state.DefaultHostPolicy()
	if h, ok := s.cfg.Backend.Snapshot().Hosts[mac]; ok {
		current = h.Policy
	}
	p, err := DecodePolicy(r.Body, current)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := s.cfg.Backend.SetPolicy(mac, p); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrInvalid) {
			code = http.StatusBadRequest
		}
		writeError(w, code, "%v", err)
		return
	}
	s.log.Info("policy changed", "mac", mac, "dns64", p.DNS64, "v6only_preferred", p.V6OnlyPreferred, "app_pinholes", p.AppPinholes,
		"lan_reachable", p.LANReachable, "hostname", p.Hostname, "ipv4", p.IPv4, "exposed_ports", strings.Join(p.ExposedPorts, " "))
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) apiGetRules(w http.ResponseWriter, r *http.Request) {
	rules := s.cfg.Backend.InboundRules()
	if rules == nil {
		rules = []state.InboundRule{}
	}
	writeJSON(w, http.StatusOK, rules)
}

// maxRulesBody bounds a rules edit.
const maxRulesBody = 64 << 10

// apiPutRules replaces the inbound rules as a whole: a JSON list of
// {"name", "token", "ports"} or {"name", "subnet": {"index", "bits"}}.
func (s *Server) apiPutRules(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing the firewall") {
		return
	}
	var rules []state.InboundRule
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRulesBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		writeError(w, http.StatusBadRequest, "rules: %v", err)
		return
	}
	if err := s.cfg.Backend.SetInboundRules(rules); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrInvalid) {
			code = http.StatusBadRequest
		}
		writeError(w, code, "%v", err)
		return
	}
	s.log.Info("inbound rules changed", "rules", len(rules))
	writeJSON(w, http.StatusOK, rules)
}

// apiPostRoles moves the WAN role to another port, at the owner's request:
// {"wan": "eth0"}, a LAN port as /api/status names it. Upstream signals on
// a LAN port never move a WAN that has proven itself, so this is how a
// moved uplink is taken over without a reboot. The answer goes out before
// the daemon restarts its services with the new roles.
func (s *Server) apiPostRoles(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing the port roles") {
		return
	}
	var in struct {
		WAN string `json:"wan"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPolicyBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "roles: %v", err)
		return
	}
	if in.WAN == "" {
		writeError(w, http.StatusBadRequest, `roles: want {"wan": "<port>"}, a LAN port`)
		return
	}
	commit, err := s.cfg.Backend.ChangeRoles(in.WAN)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrInvalid) {
			code = http.StatusBadRequest
		}
		writeError(w, code, "%v", err)
		return
	}
	s.log.Warn("port roles change requested", "wan", in.WAN)
	writeJSON(w, http.StatusAccepted, in)
	http.NewResponseController(w).Flush()
	commit()
}
