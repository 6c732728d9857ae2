package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// SetWANVLAN stores the setting, as the daemon does; a commit is given
// when it differs from the VLAN in force, and moves the uplink there.
func (f *fakeBackend) SetWANVLAN(id uint16) (func(), error) {
	if id > 4094 {
		return nil, fmt.Errorf("%w: WAN VLAN: VLAN ID %d is outside 1..4094", ErrInvalid, id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.WANVLAN = id
	if id == f.st.Roles.WANVLAN {
		return nil, nil
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.st.Roles.WANVLAN, f.st.Roles.WANVLANFrom = id, "dashboard"
		f.vlanCommits++
	}, nil
}

// The VLAN the uplink is on is in /api/status: under wan always, under
// roles with where detection found it.
func TestStatusShowsTheWANVLAN(t *testing.T) {
	s, b := newTestServer(t)
	b.st.Roles.Detected, b.st.Roles.WANPort, b.st.Roles.WANVLAN, b.st.Roles.WANVLANFrom = true, "eth0", 7, "detected"
	var st StatusJSON
	w := do(t, s, "GET", "/api/status", "", nil)
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.WAN.VLAN != 7 || st.WAN.VLANFrom != "detected" || st.Roles == nil || st.Roles.WANVLAN != 7 || st.Roles.WANVLANFrom != "detected" {
		t.Errorf("status: wan %+v, roles %+v", st.WAN, st.Roles)
	}
	if !strings.Contains(w.Body.String(), `"wan_vlan":7`) || !strings.Contains(w.Body.String(), `"vlan":7`) {
		t.Errorf("status JSON %s", w.Body)
	}
	if page := do(t, s, "GET", "/", "", nil).Body.String(); !strings.Contains(page, "on VLAN 7") {
		t.Errorf("the overview does not say the uplink is on VLAN 7")
	}
	b.st.Roles.WANVLAN, b.st.Roles.WANVLANFrom = 0, ""
	if w := do(t, s, "GET", "/api/status", "", nil); strings.Contains(w.Body.String(), "vlan") {
		t.Errorf("an untagged uplink's status mentions a VLAN: %s", w.Body)
	}
}

func TestWANVLANForm(t *testing.T) {
	post := func(s *Server, body string, auth func(*http.Request)) (int, http.Header, string) {
		w := do(t, s, "POST", "/settings/wan-vlan", body, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if auth != nil {
				auth(r)
			}
		})
		return w.Code, w.Header(), w.Body.String()
	}
	s, b := newTestServer(t)
	if code, _, _ := post(s, "vlan=7", nil); code != http.StatusUnauthorized {
		t.Errorf("without a login: %d", code)
	}
	// IEEE 802.1Q: 1..4094; the form names what is wrong and saves nothing.
	for _, bad := range []string{"vlan=4095", "vlan=seven", "vlan=-1"} {
		code, _, page := post(s, bad, adminAuth)
		if code != http.StatusBadRequest || !strings.Contains(page, "Not saved") || b.st.WANVLAN != 0 {
			t.Errorf("%s: %d, setting %d", bad, code, b.st.WANVLAN)
		}
	}
	if code, _, _ := post(s, "vlan=7&x=1", adminAuth); code != http.StatusBadRequest {
		t.Errorf("an unknown field: %d", code)
	}
	// A new VLAN: saved, the page says the services restart and loads the
	// settings again, and the change is carried out after the answer.
	code, h, page := post(s, "vlan=7", adminAuth)
	if code != http.StatusOK || !strings.Contains(page, "restarts its services with the uplink on VLAN 7") || !strings.HasSuffix(h.Get("Refresh"), "url=/settings#wanvlan") {
		t.Errorf("vlan=7: %d %v %.2000s", code, h, page)
	}
	if b.st.WANVLAN != 7 || b.vlanCommits != 1 {
		t.Errorf("setting %d, %d commits; want 7 and one", b.st.WANVLAN, b.vlanCommits)
	}
	// The same again changes nothing in force: saved, no restart.
	if code, h, _ := post(s, "vlan=+7+", adminAuth); code != http.StatusSeeOther || h.Get("Location") != "/settings?saved=wan-vlan#wanvlan" || b.vlanCommits != 1 {
		t.Errorf("the same VLAN again: %d %v, %d commits", code, h, b.vlanCommits)
	}
	page = do(t, s, "GET", "/settings?saved=wan-vlan", "", adminAuth).Body.String()
	if !strings.Contains(page, `value="7"`) || !strings.Contains(page, "on VLAN 7") || !strings.Contains(page, "Saved.") {
		t.Errorf("the settings page after saving: %.3000s", page)
	}
	// Empty: none set, untagged (or detected) again.
	if code, _, page := post(s, "vlan=", adminAuth); code != http.StatusOK || b.st.WANVLAN != 0 || !strings.Contains(page, "untagged (or on the VLAN detection finds)") {
		t.Errorf("vlan empty: %d, setting %d", code, b.st.WANVLAN)
	}
}

// A backup carries the WAN VLAN; such a file is version 2, so that a gizmo
// that knows no VLAN refuses it plainly, and a file without one stays
// version 1. Restoring it moves the uplink after the answer.
func TestBackupCarriesTheWANVLAN(t *testing.T) {
	s, b := newTestServer(t)
	b.st.WANVLAN = 832
	file := do(t, s, "GET", "/api/settings", "", adminAuth).Body.String()
	if !strings.Contains(file, `"version": 2`) || !strings.Contains(file, `"wan_vlan": 832`) {
		t.Errorf("backup with a VLAN: %s", file)
	}
	b.st.WANVLAN = 0
	if file := do(t, s, "GET", "/api/settings", "", adminAuth).Body.String(); !strings.Contains(file, `"version": 1`) || strings.Contains(file, "wan_vlan") {
		t.Errorf("backup without a VLAN: %s", file)
	}
	w := do(t, s, "PUT", "/api/settings", file2(832), adminAuth)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"wan_vlan":832`) || b.st.WANVLAN != 832 || b.vlanCommits != 1 {
		t.Errorf("restore with VLAN 832: %d %s, setting %d, %d commits", w.Code, w.Body, b.st.WANVLAN, b.vlanCommits)
	}
	if w := do(t, s, "PUT", "/api/settings", file2(5000), adminAuth); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "wan_vlan 5000 is not a VLAN ID") || b.st.WANVLAN != 832 {
		t.Errorf("restore with VLAN 5000: %d %s", w.Code, w.Body)
	}
}

func file2(vlan int) string {
	return fmt.Sprintf(`{"format":"gizmo-settings","version":2,"hosts":{},"inbound_rules":[],"wan_vlan":%d}`, vlan)
}
