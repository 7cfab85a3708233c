package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot draws results into file (.png or .svg), in four panels: streaming
// throughput (MB/s) against message size, ping-pong p50 against message
// size, the ping-pong latency distribution (CDF) at the smallest size, and
// the legend. To stay readable it draws one series per shmkit ring (the
// best waiting mode at each size: the table has them all), the main OS
// baselines, the Go channel and the machine's limits; each family has its
// colour (shmkit blue, OS orange with the pipe in red, the channel green,
// limits grey), so the gap between the blue and the red lines is the gain
// over the pipe. Cells that did not run are left out.
func Plot(file string, results []Result) error {
	format := strings.TrimPrefix(filepath.Ext(file), ".")
	if format != "png" && format != "svg" {
		return fmt.Errorf("%w: plot %q: want a .png or .svg file", ErrConfig, file)
	}
	series := plotSeries(results)
	if len(series) == 0 {
		return fmt.Errorf("%w: plot: no results to draw", ErrConfig)
	}
	var sizes []int
	for _, r := range results {
		if r.OK() && (r.Workload == Stream || r.Workload == PingPong) && r.Size >= MinSize && !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	sort.Ints(sizes)
	smallest := 0
	if len(sizes) > 0 {
		smallest = sizes[0]
	}

	thr := newPanel("streaming throughput (higher is better)", "message size", "MB/s")
	lat := newPanel("ping-pong round trip, p50 (lower is better)", "message size", "round trip")
	cdf := newPanel(fmt.Sprintf("ping-pong round trip at %s: distribution", SizeName(smallest)), "round trip", "percentile")
	for _, p := range []*plot.Plot{thr, lat} {
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker = sizeTicks(sizes)
	}
	thr.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.Y.Tick.Marker = nsTicks{}
	cdf.X.Scale, cdf.X.Tick.Marker = plot.LogScale{}, nsTicks{}
	cdf.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "min"}, {Value: nines(0.5), Label: "p50"},
		{Value: nines(0.9), Label: "p90"}, {Value: nines(0.99), Label: "p99"}, {Value: nines(0.999), Label: "p99.9"},
		{Value: nines(0.9999), Label: "max"}}
	leg := plot.New()
	leg.HideAxes()
	leg.Legend.Top, leg.Legend.Left = true, true
	leg.Legend.TextStyle.Font.Size = vg.Points(10)
	leg.Title.Text = "best waiting mode per ring; every row is in the table"

	var points [3]int
	for _, s := range series {
		var st, pp, pc plotter.XYs
		for _, r := range s.cells {
			switch {
			case r.Workload == Stream && r.MBPerSec > 0 && r.Size >= MinSize && r.Rate == 0:
				st = append(st, plotter.XY{X: float64(r.Size), Y: r.MBPerSec})
			case r.Workload == PingPong && r.P50 != nil && *r.P50 > 0:
				if r.Size >= MinSize || r.IsLimit() {
					pp = append(pp, plotter.XY{X: float64(r.Size), Y: float64(*r.P50)})
				}
				if r.Size == smallest || r.IsLimit() {
					for _, q := range []struct {
						v *int64
						y float64
					}{{r.Min, 0}, {r.P50, nines(0.5)}, {r.P90, nines(0.9)}, {r.P99, nines(0.99)}, {r.P999, nines(0.999)}, {r.Max, nines(0.9999)}} {
						if q.v != nil && *q.v > 0 {
							pc = append(pc, plotter.XY{X: float64(*q.v), Y: q.y})
						}
					}
				}
			}
		}
		if (s.name == LimitAtomic || s.name == LimitFutex) && len(sizes) > 0 && len(pp) == 1 {
			// A hand-off of one word is a floor at every size: draw it across.
			pp = plotter.XYs{{X: float64(sizes[0]), Y: pp[0].Y}, {X: float64(sizes[len(sizes)-1]), Y: pp[0].Y}}
		}
		sort.Slice(st, func(i, j int) bool { return st[i].X < st[j].X })
		sort.Slice(pp, func(i, j int) bool { return pp[i].X < pp[j].X })
		sort.Slice(pc, func(i, j int) bool { return pc[i].Y < pc[j].Y })
		for i, a := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{thr, st}, {lat, pp}, {cdf, pc}} {
			if len(a.xys) == 0 {
				continue
			}
			l, sc, err := plotter.NewLinePoints(a.xys)
			if err != nil {
				return fmt.Errorf("plot %s: %w", s.name, err)
			}
			l.LineStyle, sc.GlyphStyle = s.line, s.glyph
			a.p.Add(l, sc)
			points[i] += len(a.xys)
		}
		leg.Legend.Add(s.label, &plotter.Line{LineStyle: s.line}, &plotter.Scatter{GlyphStyle: s.glyph})
	}
	if points[0]+points[1]+points[2] == 0 {
		return fmt.Errorf("%w: plot: no points to draw", ErrConfig)
	}
	// A log axis cannot draw an empty panel (its range would be 0..0).
	for i, p := range []*plot.Plot{thr, lat, cdf} {
		if points[i] == 0 {
			p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
			p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
			p.Title.Text += " (no data)"
		}
	}
	const w, h = 34 * vg.Centimeter, 26 * vg.Centimeter
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	canvases := plot.Align([][]*plot.Plot{{thr, lat}, {cdf, leg}}, tiles, dc)
	thr.Draw(canvases[0][0])
	lat.Draw(canvases[0][1])
	cdf.Draw(canvases[1][0])
	leg.Draw(canvases[1][1])
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", file, err)
	}
	return f.Close()
}

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Add(plotter.NewGrid())
	return p
}

// nines maps a quantile to the CDF panel's y axis: the count of nines of
// 1-q, so p50, p90, p99 and p99.9 are evenly spaced.
func nines(q float64) float64 { return -math.Log10(1 - q) }

// sizeTicks labels exactly the measured sizes: 64 B, 4 KiB, 1 MiB.
func sizeTicks(sizes []int) plot.ConstantTicks {
	var ts plot.ConstantTicks
	for _, s := range sizes {
		ts = append(ts, plot.Tick{Value: float64(s), Label: sizeLabel(s)})
	}
	return ts
}

// sizeLabel is SizeName with a space before the unit.
func sizeLabel(n int) string {
	s := SizeName(n)
	for _, u := range []string{"MiB", "KiB", "B"} {
		if strings.HasSuffix(s, u) {
			return strings.TrimSuffix(s, u) + " " + u
		}
	}
	return s
}

// nsTicks labels a logarithmic nanosecond axis at powers of ten: 100 ns,
// 1 µs, 10 µs ...
type nsTicks struct{}

func (nsTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(max(lo, 1))); e <= math.Ceil(math.Log10(max(hi, 1))); e++ {
		v := math.Pow(10, e)
		ts = append(ts, plot.Tick{Value: v, Label: fmtNs(v)})
		for k := 2.0; k < 10; k++ {
			ts = append(ts, plot.Tick{Value: k * v})
		}
	}
	return ts
}

// plotSeriesT is one line of the plot.
type plotSeriesT struct {
	name  string
	label string
	line  draw.LineStyle
	glyph draw.GlyphStyle
	cells []Result
}

// Colours by family.
var (
	blue   = []color.RGBA{{0x08, 0x30, 0x6b, 255}, {0x21, 0x71, 0xb5, 255}, {0x42, 0x92, 0xc6, 255}, {0x6b, 0xae, 0xd6, 255}, {0x08, 0x51, 0x9c, 255}, {0x5e, 0x3c, 0x99, 255}}
	orange = color.RGBA{0xe6, 0x55, 0x0d, 255}
	red    = color.RGBA{0xcb, 0x18, 0x1d, 255}
	green  = color.RGBA{0x23, 0x8b, 0x45, 255}
	grey   = color.RGBA{0x52, 0x52, 0x52, 255}
)

// plotSeries picks the lines to draw: per shmkit ring the best waiting
// mode at each cell, the OS baselines, the channel and the limits.
func plotSeries(results []Result) []plotSeriesT {
	type key struct{ workload, base string }
	best := map[key]map[int]Result{}
	var order []string
	for _, r := range results {
		if !r.OK() || (r.Workload != Stream && r.Workload != PingPong) || r.Rate > 0 {
			continue
		}
		base := r.Transport
		switch r.Family {
		case FamilyShmkit:
			base = strings.SplitN(r.Transport, "/", 2)[0]
		case FamilyOS:
			if base == "fifo" || base == "sysvmsg" {
				continue // like the pipe and the POSIX queue; in the table
			}
		case FamilyHarness:
			continue
		case FamilyLimit:
			if r.Transport == LimitSyscall {
				continue
			}
		}
		k := key{r.Workload, base}
		if best[k] == nil {
			best[k] = map[int]Result{}
		}
		if !slices.Contains(order, base) {
			order = append(order, base)
		}
		cur, ok := best[k][r.Size]
		if !ok || better(r, cur) {
			best[k][r.Size] = r
		}
	}
	var out []plotSeriesT
	shmkit := 0
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}}
	osIdx := 0
	for _, base := range order {
		s := plotSeriesT{name: base, label: base}
		for _, wl := range []string{Stream, PingPong} {
			for _, r := range best[key{wl, base}] {
				s.cells = append(s.cells, r)
			}
		}
		if len(s.cells) == 0 {
			continue
		}
		fam := s.cells[0].Family
		var col color.RGBA
		width, radius := vg.Points(1.6), vg.Points(3)
		var dashes []vg.Length
		var shape draw.GlyphDrawer = draw.CircleGlyph{}
		switch fam {
		case FamilyShmkit:
			col = blue[shmkit%len(blue)]
			shape = shapes[shmkit%len(shapes)]
			if strings.HasSuffix(base, "-zc") {
				dashes = []vg.Length{vg.Points(6), vg.Points(3)}
				s.label += " (zero-copy)"
			}
			width = vg.Points(2.2)
			shmkit++
			s.label = "shmkit " + s.label
		case FamilyOS:
			col, shape = orange, shapes[(osIdx+1)%len(shapes)]
			width = vg.Points(1.2)
			osIdx++
			if base == "pipe" {
				col, width = red, vg.Points(2.2)
			}
			s.label = "OS " + s.label
		case FamilyRef:
			col = green
			s.label = "Go channel, in-process"
		case FamilyLimit:
			col, dashes = grey, []vg.Length{vg.Points(2), vg.Points(2)}
			switch base {
			case LimitMemcpy:
				shape = draw.CrossGlyph{}
			case LimitAtomic:
				shape, dashes = draw.PlusGlyph{}, []vg.Length{vg.Points(1), vg.Points(3)}
			default:
				shape, dashes = draw.BoxGlyph{}, []vg.Length{vg.Points(8), vg.Points(3)}
			}
			s.label = map[string]string{LimitMemcpy: "limit: memcpy (one copy)", LimitAtomic: "limit: atomic ping-pong (one word)",
				LimitFutex: "limit: futex wake round trip"}[base]
			if s.label == "" {
				s.label = base
			}
		}
		s.line = draw.LineStyle{Color: col, Width: width, Dashes: dashes}
		s.glyph = draw.GlyphStyle{Color: col, Radius: radius, Shape: shape}
		out = append(out, s)
	}
	return out
}

// better reports whether a beats b at the same cell: more messages/s for
// a stream, a lower p50 for a ping-pong.
func better(a, b Result) bool {
	if a.Workload == PingPong && a.P50 != nil && b.P50 != nil {
		return *a.P50 < *b.P50
	}
	return a.MsgsPerSec > b.MsgsPerSec
}
