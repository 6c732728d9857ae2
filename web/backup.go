package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// A settings file: everything the owner set, as one JSON document that
// names its format and version, so that a future gizmo can read an older
// file and an older one refuses a newer file with a clear message.
const (
	settingsFormat  = "gizmo-settings"
	settingsVersion = 1
	// maxSettingsBody bounds a restore: a host's policy takes about 200
	// bytes, so 1 MiB holds several thousand.
	maxSettingsBody = 1 << 20
)

// settingsFile is the file's JSON form.
type settingsFile struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Saved   time.Time `json:"saved,omitzero"`
	// Hosts are the policies by MAC address.
	Hosts        map[string]state.HostPolicy `json:"hosts"`
	InboundRules []state.InboundRule         `json:"inbound_rules"`
}

// encodeSettings is the backup file of s.
func encodeSettings(s state.Settings, now time.Time) []byte {
	f := settingsFile{Format: settingsFormat, Version: settingsVersion, Saved: now.UTC().Truncate(time.Second),
		Hosts: s.Hosts, InboundRules: s.InboundRules}
	if f.Hosts == nil {
		f.Hosts = map[string]state.HostPolicy{}
	}
	if f.InboundRules == nil {
		f.InboundRules = []state.InboundRule{}
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	return append(b, '\n')
}

// decodeSettings reads a settings file strictly: unknown fields are errors
// (a typo must not silently reset a switch), a field a host entry leaves
// out takes its default, and every bad entry is named, one per line. What
// the entries mean against the gizmo's network (reservations, ports,
// rules) is the backend's to check.
func decodeSettings(data []byte) (state.Settings, error) {
	var in struct {
		Format       *string                    `json:"format"`
		Version      *int                       `json:"version"`
		Saved        time.Time                  `json:"saved"`
		Hosts        map[string]json.RawMessage `json:"hosts"`
		InboundRules []json.RawMessage          `json:"inbound_rules"`
	}
	if err := strictJSON(data, &in); err != nil {
		return state.Settings{}, fmt.Errorf("not a settings file: %s", jsonError(data, err))
	}
	switch {
	case in.Format == nil || *in.Format != settingsFormat:
		return state.Settings{}, fmt.Errorf(`not a settings file: it has no "format": %q`, settingsFormat)
	case in.Version == nil:
		return state.Settings{}, errors.New(`the settings file has no "version"`)
	case *in.Version > settingsVersion:
		return state.Settings{}, fmt.Errorf("the settings file is version %d, from a newer gizmo; this one reads version %d", *in.Version, settingsVersion)
	case *in.Version < 1:
		return state.Settings{}, fmt.Errorf("the settings file's version %d is not one (the first is 1)", *in.Version)
	}
	out := state.Settings{Hosts: make(map[string]state.HostPolicy, len(in.Hosts))}
	var errs []error
	for _, mac := range slices.Sorted(maps.Keys(in.Hosts)) {
		raw := in.Hosts[mac]
		p := state.DefaultHostPolicy()
		err := strictJSON(raw, &p)
		if err == nil {
			err = validHostname(p.Hostname)
		}
		if err == nil && p.IPv4.IsValid() && !p.IPv4.Is4() {
			err = fmt.Errorf("ipv4 %s is not an IPv4 address", p.IPv4)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: %s", mac, strings.TrimPrefix(jsonError(raw, err), "policy: ")))
			continue
		}
		out.Hosts[mac] = p
	}
	for i, raw := range in.InboundRules {
		var r state.InboundRule
		if err := strictJSON(raw, &r); err != nil {
			errs = append(errs, fmt.Errorf("inbound rule %d: %s", i+1, jsonError(raw, err)))
			continue
		}
		out.InboundRules = append(out.InboundRules, r)
	}
	if len(errs) > 0 {
		return state.Settings{}, errors.Join(errs...)
	}
	return out, nil
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// jsonError says where a syntax error is, as a line and column: a person
// opens the file in an editor to fix it.
func jsonError(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset <= int64(len(data)) {
		before := data[:se.Offset]
		line := bytes.Count(before, []byte{'\n'}) + 1
		col := int(se.Offset) - bytes.LastIndexByte(before, '\n') - 1
		return fmt.Sprintf("line %d, column %d: %v", line, col, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the file ends in the middle (or is empty)"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

type settingsPageData struct {
	pageBase
	Hosts, Rules int
	// Restored names what a restore just replaced; Errors why one was
	// refused.
	Restored string
	Errors   []string
	File     string
}

// settingsPage offers the backup and the restore.
func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) {
	if !s.loggedInPage(w, r) {
		return
	}
	s.renderSettings(w, r, http.StatusOK, r.URL.Query().Get("restored"), nil, "")
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, code int, restored string, errs []string, file string) {
	cur := s.cfg.Backend.Settings()
	w.WriteHeader(code)
	s.render(w, "settings", settingsPageData{pageBase: s.adminBase(r, "Settings", "settings"),
		Hosts: len(cur.Hosts), Rules: len(cur.InboundRules), Restored: restored, Errors: errs, File: file})
}

// backup downloads the settings file.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "a backup") {
		return
	}
	now := time.Now()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gizmo-settings-%s.json"`, now.UTC().Format("2006-01-02")))
	w.Write(encodeSettings(s.cfg.Backend.Settings(), now))
}

// apiGetSettings is the backup for scripts.
func (s *Server) apiGetSettings(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "reading the settings") {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(encodeSettings(s.cfg.Backend.Settings(), time.Now()))
}

// restore replaces the settings with a file's, as a whole or not at all.
// A refused file comes back as its problems, one per line; err is a
// failure of the gizmo's (its state file could not be written).
func (s *Server) restore(data []byte) (set state.Settings, problems []string, err error) {
	set, err = decodeSettings(data)
	if err != nil {
		return set, strings.Split(err.Error(), "\n"), nil
	}
	if err := s.cfg.Backend.RestoreSettings(set); err != nil {
		if errors.Is(err, ErrInvalid) {
			return set, strings.Split(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "), "\n"), nil
		}
		return set, nil, err
	}
	s.log.Info("settings restored", "hosts", len(set.Hosts), "inbound_rules", len(set.InboundRules))
	return set, nil, nil
}

// apiPutSettings restores from the body.
func (s *Server) apiPutSettings(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "restoring the settings") {
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "settings: %v", err)
		return
	}
	set, errs, err := s.restore(data)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "%v", err)
	case errs != nil:
		writeError(w, http.StatusBadRequest, "nothing was changed: %s", strings.Join(errs, "\n"))
	default:
		writeJSON(w, http.StatusOK, struct {
			Hosts        int `json:"hosts"`
			InboundRules int `json:"inbound_rules"`
		}{len(set.Hosts), len(set.InboundRules)})
	}
}

// formRestore restores from the settings page's upload (multipart, one
// file field).
func (s *Server) formRestore(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "restoring the settings") {
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		s.renderSettings(w, r, http.StatusBadRequest, "", []string{"The upload is not a file form: " + err.Error()}, "")
		return
	}
	var data []byte
	var name string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.renderSettings(w, r, http.StatusBadRequest, "", []string{"The upload broke off: " + err.Error()}, "")
			return
		}
		if part.FormName() != "file" {
			s.renderSettings(w, r, http.StatusBadRequest, "", []string{fmt.Sprintf("unknown field %q", part.FormName())}, "")
			return
		}
		name = part.FileName()
		if data, err = io.ReadAll(part); err != nil {
			s.renderSettings(w, r, http.StatusBadRequest, "", []string{"The file is too large or broke off: " + err.Error()}, name)
			return
		}
	}
	if data == nil {
		s.renderSettings(w, r, http.StatusBadRequest, "", []string{"No file was chosen."}, "")
		return
	}
	set, errs, err := s.restore(data)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case errs != nil:
		s.renderSettings(w, r, http.StatusBadRequest, "", errs, name)
	default:
		http.Redirect(w, r, fmt.Sprintf("/settings?restored=%d+host+policies+and+%d+inbound+rules", len(set.Hosts), len(set.InboundRules)), http.StatusSeeOther)
	}
}
