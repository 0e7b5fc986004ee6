package config_test

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchboard/config"
)

func TestLoad(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config.Config
		wantErr string
	}{
		{"defaults", nil, nil, config.Config{Addr: ":3000", DatabaseURL: "switchboard.db", Feed: "sim", Tick: time.Second, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"ticker settings", []string{"-feed", "none", "-symbols", "abc, x.y", "-tick", "250ms", "-seed", "7"}, nil,
			config.Config{Addr: ":3000", DatabaseURL: "switchboard.db", Feed: "none", Symbols: []string{"ABC", "X.Y"}, Tick: 250 * time.Millisecond, Seed: 7, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"send limits", []string{"-send-rate", "1000", "-send-burst", "5000"}, nil,
			config.Config{Addr: ":3000", DatabaseURL: "switchboard.db", Feed: "sim", Tick: time.Second, SendRate: 1000, SendBurst: 5000, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"bad send rate", []string{"-send-rate", "0"}, nil, config.Config{}, "not a positive number"},
		{"redis", []string{"-redis", "redis://127.0.0.1:6379/0"}, nil,
			config.Config{Addr: ":3000", DatabaseURL: "switchboard.db", RedisURL: "redis://127.0.0.1:6379/0", Feed: "sim", Tick: time.Second, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"bad redis", []string{"-redis", "127.0.0.1:6379"}, nil, config.Config{}, "not a redis:// URL"},
		{"json logs and a subcommand's arguments", []string{"-log-format", "json", "out.db"}, nil,
			config.Config{Addr: ":3000", DatabaseURL: "switchboard.db", Feed: "sim", Tick: time.Second, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "json", Args: []string{"out.db"}}, ""},
		{"bad log format", []string{"-log-format", "xml"}, nil, config.Config{}, "neither text nor json"},
		{"bad feed", []string{"-feed", "nyse"}, nil, config.Config{}, "neither sim nor none"},
		{"bad tick", []string{"-tick", "often"}, nil, config.Config{}, "not a duration"},
		{"tick too fast", []string{"-tick", "1ms"}, nil, config.Config{}, "at least 10ms"},
		{"bad symbol", []string{"-symbols", "A B"}, nil, config.Config{}, "not a symbol"},
		{"env fallbacks", nil, map[string]string{"ADDR": ":8080", "DATABASE_URL": "/data/sb.db", "ALLOWED_ORIGINS": "https://a.example, https://b.example/", "SECURE_COOKIES": "true"},
			config.Config{Addr: ":8080", DatabaseURL: "/data/sb.db", AllowedOrigins: []string{"https://a.example", "https://b.example"}, SecureCookies: true, Feed: "sim", Tick: time.Second, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"flags win over env", []string{"-addr", "127.0.0.1:9000", "-secure-cookies=false"}, map[string]string{"ADDR": ":8080", "SECURE_COOKIES": "true"},
			config.Config{Addr: "127.0.0.1:9000", DatabaseURL: "switchboard.db", Feed: "sim", Tick: time.Second, SendRate: 5, SendBurst: 20, MaxUserConns: 16, LogFormat: "text"}, ""},
		{"bad boolean", nil, map[string]string{"SECURE_COOKIES": "maybe"}, config.Config{}, "not a boolean"},
		{"bad origin", []string{"-origins", "chat.example.com"}, nil, config.Config{}, "is not an origin"},
		{"origin with a path", []string{"-origins", "https://chat.example.com/app"}, nil, config.Config{}, "is not an origin"},
		{"empty addr", []string{"-addr", ""}, nil, config.Config{}, "-addr must not be empty"},
		{"unknown flag", []string{"-nope"}, nil, config.Config{}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Load(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
