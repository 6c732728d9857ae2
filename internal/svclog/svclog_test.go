package svclog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestForNamesTheService(t *testing.T) {
	var buf bytes.Buffer
	For(slog.New(slog.NewTextHandler(&buf, nil)), "ra", "interface", "lan0").Info("advertising")
	if got := buf.String(); !strings.Contains(got, "service=ra interface=lan0") {
		t.Fatalf("record %q lacks the service's attributes", got)
	}
}

func TestForWithoutLoggerUsesDefault(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)
	For(nil, "nat64").Info("loaded")
	if !strings.Contains(buf.String(), "service=nat64") {
		t.Fatalf("default logger got %q", buf.String())
	}
}
