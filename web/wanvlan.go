package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// maxVLANID is the highest 802.1Q VLAN ID (IEEE 802.1Q: 4095 is
// reserved); the daemon checks the setting as a whole.
const maxVLANID = 4094

// restartWait is how long the page waits before it loads the settings
// again after a change that restarts the services: role detection probes
// the ports for a few seconds before the dashboard is back.
const restartWait = 20

// wanVLANView is the settings page's WAN VLAN section.
type wanVLANView struct {
	// Setting is the owner's (the form's value; "" for none).
	Setting string
	// InForce is the VLAN the uplink is on (0: untagged), From where it
	// came from ("detected", "dashboard", "flag"), Error why it could not
	// be applied.
	InForce     uint16
	From, Error string
	// Flag: the -wan-vlan flag overrides the setting.
	Flag bool
	// Errors are why a submitted value was refused; Saved that one was
	// saved without a restart; Restarting that the services restart now,
	// with the uplink on VLAN Next (0: untagged, or what detection finds).
	Errors     []string
	Saved      bool
	Restarting bool
	Next       uint16
}

func (s *Server) wanVLANView(r *http.Request) wanVLANView {
	st := s.cfg.Backend.Snapshot()
	v := wanVLANView{InForce: st.Roles.WANVLAN, From: st.Roles.WANVLANFrom, Error: st.Roles.WANVLANError,
		Flag: st.Roles.WANVLANFrom == "flag", Saved: r.URL.Query().Get("saved") == "wan-vlan"}
	if st.WANVLAN != 0 {
		v.Setting = strconv.Itoa(int(st.WANVLAN))
	}
	return v
}

// parseWANVLAN reads the form's VLAN: empty (or 0) for none, else an ID.
func parseWANVLAN(text string) (uint16, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return 0, nil
	}
	id, err := strconv.Atoi(text)
	if err != nil || id < 0 || id > maxVLANID {
		return 0, fmt.Errorf("%q is not a VLAN ID: a number from 1 to %d, or empty for none", text, maxVLANID)
	}
	return uint16(id), nil
}

// formWANVLAN sets the WAN's VLAN from the settings page: POST
// /settings/wan-vlan with the field vlan (empty for none). When the
// uplink moves to another VLAN, the services restart: the page says so
// and loads the settings again once the dashboard is back.
func (s *Server) formWANVLAN(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing the WAN VLAN") {
		return
	}
	if !readForm(w, r, "vlan") {
		return
	}
	refuse := func(msg string) {
		v := s.wanVLANView(r)
		v.Setting, v.Errors = r.PostForm.Get("vlan"), []string{msg}
		s.renderSettingsVLAN(w, r, http.StatusBadRequest, v, "")
	}
	id, err := parseWANVLAN(r.PostForm.Get("vlan"))
	if err != nil {
		refuse(err.Error())
		return
	}
	commit, err := s.cfg.Backend.SetWANVLAN(id)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			refuse(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.Info("WAN VLAN set", "vlan", id)
	if commit == nil {
		http.Redirect(w, r, "/settings?saved=wan-vlan#wanvlan", http.StatusSeeOther)
		return
	}
	s.restarting(w, r, id, "")
	afterAnswer(w, commit)
}

// restarting answers a change that restarts the services with the uplink
// on VLAN next: the settings page, saying so, and loading itself again
// after restartWait seconds (the Refresh header: the POST's own URL would
// not do). restored names what a restore replaced, if it was one.
func (s *Server) restarting(w http.ResponseWriter, r *http.Request, next uint16, restored string) {
	v := s.wanVLANView(r)
	v.Restarting, v.Next = true, next
	w.Header().Set("Refresh", fmt.Sprintf("%d; url=/settings#wanvlan", restartWait))
	s.renderSettingsVLAN(w, r, http.StatusOK, v, restored)
}

// renderSettingsVLAN is the settings page with the given WAN VLAN section.
func (s *Server) renderSettingsVLAN(w http.ResponseWriter, r *http.Request, code int, v wanVLANView, restored string) {
	cur := s.cfg.Backend.Settings()
	w.WriteHeader(code)
	s.render(w, "settings", settingsPageData{pageBase: s.adminBase(r, "Settings", "settings"),
		Hosts: len(cur.Hosts), Rules: len(cur.InboundRules), Restored: restored, VLAN: v})
}
