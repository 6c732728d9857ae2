package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// logLine is one line of the daemon's log as the log page shows it: the
// message apart from its attributes.
type logLine struct {
	Time  time.Time
	Level string
	Msg   string
	Text  string // the attributes, or the whole line of another shape
}

// parseLogLine splits a slog text line ("time=... level=... msg=...")
// into its time, level and the rest; a line of another shape is all text.
func parseLogLine(s string) logLine {
	var l logLine
	rest, ok := strings.CutPrefix(s, "time=")
	if !ok {
		return logLine{Text: s}
	}
	ts, rest, _ := strings.Cut(rest, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return logLine{Text: s}
	}
	l.Time = t
	if lv, ok := strings.CutPrefix(rest, "level="); ok {
		l.Level, rest, _ = strings.Cut(lv, " ")
	}
	if m, ok := strings.CutPrefix(rest, "msg="); ok {
		// slog quotes a message with spaces or special characters
		// (strconv.Quote); a plain one runs to the next space.
		if q, err := strconv.QuotedPrefix(m); err == nil {
			l.Msg, _ = strconv.Unquote(q)
			rest = strings.TrimPrefix(m[len(q):], " ")
		} else {
			l.Msg, rest, _ = strings.Cut(m, " ")
		}
	}
	l.Text = rest
	return l
}

type logPageData struct {
	pageBase
	Lines              []logLine
	Held               int
	Dropped, Truncated uint64
	Problems, Missing  bool
}

// logPage shows the daemon's recent log, newest first; ?level=warn only
// the warnings and errors.
func (s *Server) logPage(w http.ResponseWriter, r *http.Request) {
	if !s.loggedInPage(w, r) {
		return
	}
	data := logPageData{pageBase: s.adminBase(r, "Log", "log"), Problems: r.URL.Query().Get("level") == "warn"}
	if s.cfg.Log == nil {
		data.Missing = true
	} else {
		lines := s.cfg.Log.Lines()
		data.Held, data.Dropped, data.Truncated = s.cfg.Log.Stats()
		for _, raw := range slices.Backward(lines) {
			l := parseLogLine(raw)
			if data.Problems && l.Level != "WARN" && l.Level != "ERROR" {
				continue
			}
			data.Lines = append(data.Lines, l)
		}
	}
	s.render(w, "log", data)
}
