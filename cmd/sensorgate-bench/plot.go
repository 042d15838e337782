package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
)

// plotCommand draws a soak's JSON (soak.go) as a PNG: RSS, CPU per
// uplink and drain lag over time, one panel each.
//
//	sensorgate-bench plot -in soak.json -out soak.png
func plotCommand(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "soak.json", "the soak's JSON time series")
	out := fs.String("out", "soak.png", "the PNG to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	var res SoakResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("plot: %s is not a soak's JSON: %w", *in, err)
	}
	return plotFile(&res, *out)
}

// plotFile writes the soak's plot to path.
func plotFile(res *SoakResult, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, drawSoak(res)); err != nil {
		f.Close()
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return nil
}

var (
	colBlue   = color.RGBA{31, 119, 180, 255}
	colOrange = color.RGBA{255, 127, 14, 255}
	colGreen  = color.RGBA{44, 160, 44, 255}
	colRed    = color.RGBA{214, 39, 40, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colAxis   = color.RGBA{60, 60, 60, 255}
	colWarmup = color.RGBA{150, 150, 150, 255}
)

// series is one line of a panel.
type series struct {
	label string
	c     color.RGBA
	y     func(soakSample) float64
}

const (
	plotW      = 1100
	panelH     = 240
	plotLeft   = 110 // room for the y labels
	plotRight  = 30
	plotTop    = 60 // the title
	panelGap   = 50 // the panel's own heading
	plotBottom = 60 // the x labels
	fontScale  = 2
)

// drawSoak draws three panels over the soak's time in minutes.
func drawSoak(res *SoakResult) *image.RGBA {
	panels := []struct {
		title string
		lines []series
	}{
		{"RSS MB", []series{
			{"daemon", colBlue, func(s soakSample) float64 { return s.RSSMB }},
			{"codec workers", colOrange, func(s soakSample) float64 { return s.WorkersMB }},
		}},
		{"CPU µs per uplink", []series{
			{"daemon + codec workers", colGreen, func(s soakSample) float64 { return s.CPUPerUplinkUs }},
			{"daemon", colBlue, func(s soakSample) float64 { return s.DaemonCPUPerUplinkUs }},
		}},
		{"drain lag s (oldest spooled record)", []series{{"", colRed, func(s soakSample) float64 { return s.DrainLagS }}}},
	}
	h := plotTop + len(panels)*(panelGap+panelH) + plotBottom
	img := image.NewRGBA(image.Rect(0, 0, plotW, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	title := fmt.Sprintf("sensorgate soak: %.0f uplinks/s, %d devices", res.Rate, res.Devices)
	if res.JSEvery > 0 {
		title += fmt.Sprintf(", 1/%d in JavaScript", res.JSEvery)
	}
	title += fmt.Sprintf(", lost %d", res.Lost)
	drawText(img, plotLeft, 16, title, fontScale, colAxis)

	tMax := 1.0
	for _, s := range res.Samples {
		tMax = max(tMax, s.T/60)
	}
	xStep := niceStep(tMax, 10)
	tMax = math.Ceil(tMax/xStep) * xStep
	x0, x1 := plotLeft, plotW-plotRight
	xOf := func(min float64) int { return x0 + int(math.Round(min/tMax*float64(x1-x0))) }

	for i, p := range panels {
		top := plotTop + i*(panelGap+panelH) + panelGap
		y0, y1 := top+panelH, top // y grows downwards
		drawText(img, x0, top-panelGap+14, p.title, fontScale, colAxis)
		lx := x0 + textWidth(p.title, fontScale) + 30
		for _, l := range p.lines {
			if l.label == "" {
				continue
			}
			fill(img, lx, top-panelGap+18, lx+20, top-panelGap+22, l.c)
			drawText(img, lx+26, top-panelGap+14, l.label, fontScale, l.c)
			lx += 26 + textWidth(l.label, fontScale) + 30
		}
		yMax := 0.0
		for _, l := range p.lines {
			for _, s := range res.Samples {
				yMax = max(yMax, l.y(s))
			}
		}
		if yMax <= 0 {
			yMax = 1
		}
		yStep := niceStep(yMax, 5)
		yMax = math.Ceil(yMax*1.05/yStep) * yStep
		yOf := func(v float64) int { return y0 - int(math.Round(v/yMax*float64(y0-y1))) }
		for v := 0.0; v <= yMax+yStep/2; v += yStep {
			y := yOf(v)
			hline(img, x0, x1, y, colGrid)
			lab := tickLabel(v, yStep)
			drawText(img, x0-10-textWidth(lab, fontScale), y-7, lab, fontScale, colAxis)
		}
		for v := 0.0; v <= tMax+xStep/2; v += xStep {
			x := xOf(v)
			vline(img, x, y1, y0, colGrid)
			if i == len(panels)-1 {
				lab := tickLabel(v, xStep)
				drawText(img, x-textWidth(lab, fontScale)/2, y0+10, lab, fontScale, colAxis)
			}
		}
		if res.WarmupS > 0 && res.WarmupS/60 < tMax {
			x := xOf(res.WarmupS / 60)
			for y := y1; y < y0; y += 8 {
				vline(img, x, y, min(y+4, y0), colWarmup)
			}
			drawText(img, x+6, y1+4, "warm-up", fontScale, colWarmup)
		}
		hline(img, x0, x1, y0, colAxis)
		vline(img, x0, y1, y0, colAxis)
		for _, l := range p.lines {
			for k := 1; k < len(res.Samples); k++ {
				a, b := res.Samples[k-1], res.Samples[k]
				line(img, xOf(a.T/60), yOf(l.y(a)), xOf(b.T/60), yOf(l.y(b)), l.c)
			}
		}
	}
	lab := "minutes since publishing began"
	drawText(img, (x0+x1-textWidth(lab, fontScale))/2, h-plotBottom+34, lab, fontScale, colAxis)
	return img
}

// niceStep is a step of 1, 2 or 5 times a power of ten that divides
// [0, max] into at most about n parts.
func niceStep(max float64, n int) float64 {
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// tickLabel prints v with as many decimals as the step needs.
func tickLabel(v, step float64) string {
	d := 0
	if step < 1 {
		d = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return fmt.Sprintf("%.*f", d, v)
}

func fill(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	draw.Draw(img, image.Rect(xa, ya, xb, yb), image.NewUniform(c), image.Point{}, draw.Src)
}

func hline(img *image.RGBA, xa, xb, y int, c color.Color) { fill(img, xa, y, xb+1, y+1, c) }
func vline(img *image.RGBA, x, ya, yb int, c color.Color) { fill(img, x, ya, x+1, yb+1, c) }

// line draws a two-pixel-wide segment (Bresenham).
func line(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := sign(xb-xa), sign(yb-ya)
	e := dx + dy
	for {
		fill(img, xa, ya, xa+2, ya+2, c)
		if xa == xb && ya == yb {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			xa += sx
		}
		if e2 <= dx {
			e += dx
			ya += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
