package views

import (
	"math"
	"strconv"
	"strings"
)

// chartPoints maps prices onto an SVG polyline of the given size (y grows downward), leaving pad above and below.
// A flat or single-point series is drawn across the middle.
func chartPoints(prices []float64, w, h, pad float64) string {
	if len(prices) == 0 {
		return ""
	}
	lo, hi := prices[0], prices[0]
	for _, p := range prices {
		lo, hi = math.Min(lo, p), math.Max(hi, p)
	}
	var b strings.Builder
	for i, p := range prices {
		x := w
		if len(prices) > 1 {
			x = w * float64(i) / float64(len(prices)-1)
		}
		y := h / 2
		if hi > lo {
			y = pad + (h-2*pad)*(hi-p)/(hi-lo)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}

// areaPoints closes a chart line down to the bottom edge, for a filled area under it.
func areaPoints(prices []float64, w, h, pad float64) string {
	line := chartPoints(prices, w, h, pad)
	if line == "" {
		return ""
	}
	first := "0"
	if len(prices) == 1 {
		first = strconv.FormatFloat(w, 'f', 1, 64)
	}
	return first + "," + strconv.FormatFloat(h, 'f', 1, 64) + " " + line + " " + strconv.FormatFloat(w, 'f', 1, 64) + "," + strconv.FormatFloat(h, 'f', 1, 64)
}

func price(p float64) string { return strconv.FormatFloat(p, 'f', 2, 64) }

func signed(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v >= 0 && !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	if s == "-0.00" {
		s = "+0.00"
	}
	return s
}

func percent(v float64) string { return signed(v) + "%" }

// trendClass colours a change: green up, red down.
func trendClass(v float64) string {
	switch {
	case v > 0:
		return "text-green-700 dark:text-green-400"
	case v < 0:
		return "text-red-700 dark:text-red-400"
	}
	return "text-slate-500"
}

func flashClass(q Quote) string {
	switch {
	case q.Up:
		return "flash-up"
	case q.Down:
		return "flash-down"
	}
	return ""
}

func quoteURL(symbol string) string { return "/ticker/" + symbol }
