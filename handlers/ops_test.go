package handlers_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricValue scrapes /metrics, parses it as Prometheus text, and returns the value of name with the given
// label (or the only one).
func metricValue(t *testing.T, srv *testServer, name, label, value string) float64 {
	t.Helper()
	_, body := srv.newClient().get("/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	f, ok := families[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, m := range f.GetMetric() {
		match := label == ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s has no series with %s=%q", name, label, value)
	return 0
}

func TestMetricsMoveWhenMessagesFlow(t *testing.T) {
	srv := newTestServer(t)
	ana, bob := srv.signup("ana"), srv.signup("bob")
	general := srv.roomID("general", srv.user("ana").ID)
	path := fmt.Sprintf("/rooms/%d", general)
	stored := metricValue(t, srv, "switchboard_messages_stored_total", "", "")
	deliveries := metricValue(t, srv, "switchboard_deliveries_total", "", "")
	conns := bob.mustDial(path + "/ws")
	srv.waitSubscribers(fmt.Sprintf("room:%d", general), 1)
	if n := metricValue(t, srv, "switchboard_connections", "kind", "room_ws"); n != 1 {
		t.Fatalf("room sockets: %v, want 1", n)
	}
	for i := 0; i < 3; i++ {
		ana.post(path+"/messages", url.Values{"text": {fmt.Sprintf("m%d", i)}})
	}
	readUntil(t, conns, "m2")
	if got := metricValue(t, srv, "switchboard_messages_stored_total", "", ""); got != stored+3 {
		t.Fatalf("stored: %v, want %v", got, stored+3)
	}
	if got := metricValue(t, srv, "switchboard_deliveries_total", "", ""); got < deliveries+3 {
		t.Fatalf("deliveries: %v, want at least %v", got, deliveries+3)
	}
	if metricValue(t, srv, "switchboard_db_query_seconds", "op", "create") == 0 {
		t.Fatal("no database query latency observed")
	}
	if metricValue(t, srv, "switchboard_fanout_seconds", "", "") == 0 {
		t.Fatal("no fan-out latency observed")
	}
	if resp, body := srv.newClient().get("/readyz"); resp.StatusCode != 200 || body != "ready" {
		t.Fatalf("/readyz: %d %q", resp.StatusCode, body)
	}
}
