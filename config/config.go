// Package config reads Switchboard's settings from flags, with environment variables as fallbacks.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Config is everything the server needs to start.
type Config struct {
	Addr           string   // listen address, e.g. ":3000"
	DatabaseURL    string   // a SQLite path (default) or a postgres:// URL
	AllowedOrigins []string // extra origins allowed to open WebSockets, e.g. "https://chat.example.com"
	SecureCookies  bool     // mark cookies Secure (set when served over HTTPS)
}

// setting ties one flag to its environment variable and default.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "ADDR", ":3000", "listen address"},
	{"db", "DATABASE_URL", "switchboard.db", "SQLite file path or postgres:// URL"},
	{"origins", "ALLOWED_ORIGINS", "", "comma-separated extra origins allowed to open WebSockets"},
	{"secure-cookies", "SECURE_COOKIES", "false", "mark session cookies Secure (behind HTTPS)"},
}

// Load parses args (without the program name); a flag wins over its environment variable, which wins over the default.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(usage)
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		values[s.flag] = fs.String(s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	secure, err := strconv.ParseBool(*values["secure-cookies"])
	if err != nil {
		return Config{}, fmt.Errorf("config: -secure-cookies: %q is not a boolean", *values["secure-cookies"])
	}
	cfg := Config{
		Addr:           *values["addr"],
		DatabaseURL:    *values["db"],
		AllowedOrigins: splitList(*values["origins"]),
		SecureCookies:  secure,
	}
	return cfg, cfg.Validate()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("config: -addr must not be empty")
	}
	if c.DatabaseURL == "" {
		return errors.New("config: -db must not be empty")
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("config: -origins: %q is not an origin like https://chat.example.com", o)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, strings.TrimSuffix(part, "/"))
		}
	}
	return out
}
