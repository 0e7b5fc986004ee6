package main

import (
	"context"
	"strings"
	"testing"
)

func TestHandle(t *testing.T) {
	prices := map[string]float64{"VOIDX": 101.2345, "BRK.B": 412, "ACME": 0.5}
	tests := []struct {
		text  string
		reply string
		ok    bool
	}{
		{"!price VOIDX", "VOIDX: 101.23", true},
		{"!price voidx", "VOIDX: 101.23", true},
		{"@pricebot !price VOIDX", "VOIDX: 101.23", true},
		{"  !PRICE   acme?  ", "ACME: 0.50", true},
		{"what is it? !price BRK.B please", "BRK.B: 412.00", true},
		{"!price NOPE", "I have no price for NOPE yet.", true},
		{"!price", "Usage: !price SYMBOL (for example !price VOIDX)", true},
		{"!price <script>", `"<script>" is not a ticker symbol.`, true},
		{"!price WAYTOOLONGSYMBOL", `"WAYTOOLONGSYMBOL" is not a ticker symbol.`, true},
		{"hello", "", false},
		{"", "", false},
		{"!prices VOIDX", "", false},
		{"price VOIDX", "", false},
		{"VOIDX: 101.23", "", false}, // the bot's own answer is no command
	}
	for _, tt := range tests {
		reply, ok := handle(tt.text, prices)
		if reply != tt.reply || ok != tt.ok {
			t.Errorf("handle(%q) = %q, %v; want %q, %v", tt.text, reply, ok, tt.reply, tt.ok)
		}
	}
	if _, ok := handle("!price VOIDX", nil); !ok {
		t.Error("no prices yet: the command still gets an answer")
	}
}

func TestRunNeedsAToken(t *testing.T) {
	err := run(context.Background(), nil, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("run without a token: %v", err)
	}
	err = run(context.Background(), []string{"-url", "ftp://x"}, func(string) string { return "sb_x" })
	if err == nil || !strings.Contains(err.Error(), "-url") {
		t.Fatalf("run with a bad url: %v", err)
	}
}
