package e2e

import (
	"testing"
	"time"
)

// TestTickerPricesMove: prices on /ticker change within 3 s of opening (the server ticks every 200 ms), and a
// symbol's detail chart redraws as ticks arrive.
func TestTickerPricesMove(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a := newTab(t, "alice")
	a.signup(s, "alice")

	const price = `(document.querySelector("#row-VOIDX td[data-price]") || {}).textContent`
	a.navigate(s.URL + "/ticker")
	opened := time.Now()
	a.waitFor("a VOIDX price", `!!document.querySelector("#row-VOIDX td[data-price]")`)
	first := eval[string](a, price)
	a.waitForWithin(3*time.Second-time.Since(opened), "the VOIDX price to change from "+first+" within 3 s of opening",
		price+" !== "+jsString(first))
	t.Logf("VOIDX: %s → %s after %v", first, eval[string](a, price), time.Since(opened).Round(time.Millisecond))
	if n := eval[int](a, `document.querySelectorAll("#quotes tr").length`); n < 2 {
		a.fatalf("the ticker shows %d rows", n)
	}
	a.screenshot("ticker")

	const points = `(document.querySelector("#detail-VOIDX polyline") || {getAttribute: function(){return ""}}).getAttribute("points")`
	a.navigate(s.URL + "/ticker/VOIDX")
	a.waitFor("the VOIDX chart", `!!document.querySelector("#detail-VOIDX polyline")`)
	before := eval[string](a, points)
	a.waitForWithin(5*time.Second, "the VOIDX chart to redraw", points+" !== "+jsString(before))
	a.screenshot("detail")
}
