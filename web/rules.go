package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// ruleForm is a rule as its form shows it.
type ruleForm struct {
	Name, Kind, Token, Ports, Index, Bits string
}

func ruleFormOf(r state.InboundRule) ruleForm {
	f := ruleForm{Name: r.Name, Kind: "token", Ports: strings.Join(r.Ports, " "), Bits: "64"}
	if r.Token.IsValid() {
		f.Token = r.Token.String()
	}
	if r.Subnet != nil {
		f.Kind, f.Index, f.Bits = "subnet", strconv.FormatUint(r.Subnet.Index, 10), strconv.Itoa(r.Subnet.Bits)
	}
	return f
}

// ruleOf reads a rule's form; the kind decides which fields count.
func ruleOf(f ruleForm) (state.InboundRule, error) {
	r := state.InboundRule{Name: strings.TrimSpace(f.Name)}
	if len(r.Name) > 64 {
		return r, errors.New("the name is longer than 64 characters")
	}
	switch f.Kind {
	case "token":
		tok, err := netip.ParseAddr(strings.TrimSpace(f.Token))
		if err != nil || !tok.Is6() || tok.Is4In6() {
			return r, fmt.Errorf("token %q: want an interface identifier like ::80 (the host sets it with \"ip token set ::80 dev eth0\")", f.Token)
		}
		r.Token = tok
		r.Ports = strings.FieldsFunc(strings.ToLower(f.Ports), func(c rune) bool { return c == ',' || unicode.IsSpace(c) })
	case "subnet":
		idx, err := strconv.ParseUint(strings.TrimSpace(f.Index), 10, 64)
		if err != nil {
			return r, fmt.Errorf("subnet number %q: want a whole number (0 is the delegation's first)", f.Index)
		}
		bits, err := strconv.Atoi(strings.TrimSpace(f.Bits))
		if err != nil {
			return r, fmt.Errorf("subnet length %q: want a prefix length like 64", f.Bits)
		}
		r.Subnet = &state.Subnet{Index: idx, Bits: bits}
	default:
		return r, fmt.Errorf("kind %q: want token or subnet", f.Kind)
	}
	return r, nil
}

// rulesRev names a version of the rules, so that an edit made on a page
// that shows an older version (another tab, another phone) is refused
// instead of changing the wrong rule.
func rulesRev(rules []state.InboundRule) string {
	if rules == nil {
		rules = []state.InboundRule{} // no rules is one version, however held
	}
	b, _ := json.Marshal(rules)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

type ruleView struct {
	Finding RuleFinding
	Form    ruleForm
	// Error is why this rule's edit was refused; Open keeps its edit form
	// open.
	Error []string
	Open  bool
}

type rulesPageData struct {
	pageBase
	Rules    []ruleView
	Add      ruleForm
	AddError []string
	Rev      string
	Notice   string
}

// rulesPage lists the inbound rules with what each lets in now, each with
// its edit and delete forms, and a form for a new rule.
func (s *Server) rulesPage(w http.ResponseWriter, r *http.Request) {
	if !s.loggedInPage(w, r) {
		return
	}
	s.renderRules(w, r, http.StatusOK, -1, ruleForm{Kind: "token", Bits: "64"}, nil, "")
}

// renderRules shows the rules; edited is the rule (-1: the new one, -2:
// none) whose form shows form and errs.
func (s *Server) renderRules(w http.ResponseWriter, r *http.Request, code, edited int, form ruleForm, errs []string, notice string) {
	f := s.cfg.Backend.Findings()
	rules := make([]state.InboundRule, 0, len(f.Rules))
	data := rulesPageData{pageBase: s.adminBase(r, "Inbound rules", "rules"), Add: ruleForm{Kind: "token", Bits: "64"}, Notice: notice}
	for i, rf := range f.Rules {
		rules = append(rules, rf.Rule)
		v := ruleView{Finding: rf, Form: ruleFormOf(rf.Rule)}
		if i == edited {
			v.Form, v.Error, v.Open = form, errs, true
		}
		data.Rules = append(data.Rules, v)
	}
	if edited == -1 {
		data.Add, data.AddError = form, errs
	}
	data.Rev = rulesRev(rules)
	w.WriteHeader(code)
	s.render(w, "rules", data)
}

// formRules handles the rules page's forms: POST /rules adds a rule, POST
// /rules/{i} replaces rule i, POST /rules/{i}/delete removes it. The rules
// are replaced as a whole (SetInboundRules), so one bad rule changes
// nothing.
func (s *Server) formRules(w http.ResponseWriter, r *http.Request) {
	if !s.requireLogin(w, r, "changing the firewall") {
		return
	}
	if !readForm(w, r, "rev", "name", "kind", "token", "ports", "index", "bits") {
		return
	}
	rules := s.cfg.Backend.InboundRules()
	idx := -1
	if v := r.PathValue("i"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > len(rules) {
			http.Error(w, fmt.Sprintf("no rule %q", v), http.StatusNotFound)
			return
		}
		idx = n - 1
	}
	form := ruleForm{Name: r.PostForm.Get("name"), Kind: r.PostForm.Get("kind"), Token: r.PostForm.Get("token"),
		Ports: r.PostForm.Get("ports"), Index: r.PostForm.Get("index"), Bits: r.PostForm.Get("bits")}
	if rev := r.PostForm.Get("rev"); rev != rulesRev(rules) {
		s.renderRules(w, r, http.StatusConflict, -2, form, nil,
			"The rules changed in the meantime (another tab or device), so nothing was saved. Here they are as they are now.")
		return
	}
	deleting := strings.HasSuffix(r.URL.Path, "/delete")
	next := slices.Clone(rules)
	var what string
	switch {
	case deleting:
		what = "deleted rule " + strconv.Itoa(idx+1)
		next = slices.Delete(next, idx, idx+1)
	default:
		rule, err := ruleOf(form)
		if err != nil {
			s.renderRules(w, r, http.StatusBadRequest, idx, form, []string{err.Error()}, "")
			return
		}
		if idx < 0 {
			what = "added a rule"
			next = append(next, rule)
		} else {
			what = "changed rule " + strconv.Itoa(idx+1)
			next[idx] = rule
		}
	}
	if err := s.cfg.Backend.SetInboundRules(next); err != nil {
		if !errors.Is(err, ErrInvalid) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.renderRules(w, r, http.StatusBadRequest, idx, form, ruleErrors(err), "")
		return
	}
	s.log.Info("inbound rules changed", "what", what, "rules", len(next))
	http.Redirect(w, r, "/rules", http.StatusSeeOther)
}

// ruleErrors are the lines of a refused rules edit, without the prefix
// that names the rule: the page shows them at the rule's own form.
func ruleErrors(err error) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "), "\n") {
		if _, rest, ok := strings.Cut(line, "): "); ok && strings.HasPrefix(line, "rule ") {
			line = rest
		}
		out = append(out, line)
	}
	return out
}
