package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot draws results into file (.png or .svg), four panels: streaming
// throughput (MB/s) against message size, ping-pong p50 against message
// size, the ping-pong latency percentiles of every transport at the
// smallest size, and the legend. Axes are logarithmic; a transport keeps
// its colour and marker in every panel. Cells that did not run are left
// out.
func Plot(file string, results []Result) error {
	format := strings.TrimPrefix(filepath.Ext(file), ".")
	if format != "png" && format != "svg" {
		return fmt.Errorf("plot %q: want a .png or .svg file: %w", file, ErrConfig)
	}
	var names []string
	for _, r := range results {
		if r.OK() && !slices.Contains(names, r.Transport) && r.Transport != LimitSyscall {
			names = append(names, r.Transport)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("plot: no results to draw: %w", ErrConfig)
	}
	styleOf := func(name string) (draw.LineStyle, draw.GlyphStyle) {
		i := slices.Index(names, name)
		ls := draw.LineStyle{Color: plotutil.Color(i), Width: vg.Points(1.2), Dashes: plotutil.Dashes(i / 7)}
		gs := draw.GlyphStyle{Color: plotutil.Color(i), Radius: vg.Points(2.5), Shape: plotutil.Shape(i)}
		return ls, gs
	}
	logAxes := func(p *plot.Plot) {
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	}
	addLine := func(p *plot.Plot, name string, xys plotter.XYs) error {
		if len(xys) == 0 {
			return nil
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.LineStyle, s.GlyphStyle = styleOf(name)
		p.Add(l, s)
		return nil
	}

	thr := plot.New()
	thr.Title.Text = "streaming throughput"
	thr.X.Label.Text = "message size (bytes)"
	thr.Y.Label.Text = "MB/s"
	logAxes(thr)
	lat := plot.New()
	lat.Title.Text = "ping-pong round trip, p50"
	lat.X.Label.Text = "message size (bytes)"
	lat.Y.Label.Text = "ns"
	logAxes(lat)
	pct := plot.New()
	pct.Y.Label.Text = "ns"
	pct.X.Label.Text = "percentile"
	pct.Y.Scale, pct.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	pct.NominalX("p50", "p90", "p99", "p99.9", "max")
	smallest := 0
	for _, r := range results {
		if r.OK() && r.Workload == PingPong && r.P50 != nil && !r.IsLimit() && (smallest == 0 || r.Size < smallest) {
			smallest = r.Size
		}
	}
	pct.Title.Text = "ping-pong percentiles at " + SizeName(smallest)
	leg := plot.New()
	leg.HideAxes()
	leg.Legend.Top, leg.Legend.Left = true, true
	leg.Legend.TextStyle.Font.Size = vg.Points(9)

	drawn := 0
	var panelPoints [3]int
	for _, name := range names {
		var st, pp, pc plotter.XYs
		for _, r := range results {
			if !r.OK() || r.Transport != name {
				continue
			}
			switch {
			case r.Workload == Stream && r.MBPerSec > 0 && r.Size > 0:
				st = append(st, plotter.XY{X: float64(r.Size), Y: r.MBPerSec})
			case r.Workload == PingPong && r.P50 != nil && *r.P50 > 0 && r.Size > 0:
				if !r.IsLimit() {
					pp = append(pp, plotter.XY{X: float64(r.Size), Y: float64(*r.P50)})
				}
				if r.Size == smallest || r.IsLimit() {
					for i, v := range []*int64{r.P50, r.P90, r.P99, r.P999, r.Max} {
						if v != nil && *v > 0 {
							pc = append(pc, plotter.XY{X: float64(i), Y: float64(*v)})
						}
					}
				}
			}
		}
		for i, a := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{thr, st}, {lat, pp}, {pct, pc}} {
			if err := addLine(a.p, name, a.xys); err != nil {
				return fmt.Errorf("plot %s: %w", name, err)
			}
			drawn += len(a.xys)
			panelPoints[i] += len(a.xys)
		}
		ls, gs := styleOf(name)
		leg.Legend.Add(name, &plotter.Line{LineStyle: ls}, &plotter.Scatter{GlyphStyle: gs})
	}
	if drawn == 0 {
		return fmt.Errorf("plot: no points to draw: %w", ErrConfig)
	}
	// A log axis cannot draw an empty panel (its range would be 0..0).
	for i, p := range []*plot.Plot{thr, lat, pct} {
		if panelPoints[i] == 0 {
			p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
			p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
			p.Title.Text += " (no data)"
		}
	}
	const w, h = 32 * vg.Centimeter, 24 * vg.Centimeter
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(4)}
	canvases := plot.Align([][]*plot.Plot{{thr, lat}, {pct, leg}}, tiles, dc)
	thr.Draw(canvases[0][0])
	lat.Draw(canvases[0][1])
	pct.Draw(canvases[1][0])
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
