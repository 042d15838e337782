package main

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Machine describes where the numbers came from, so a result can be
// compared only with results from the same kind of box.
type Machine struct {
	CPUs       int    `json:"cpus"`      // logical CPUs this process may use
	CPUModel   string `json:"cpu_model"` // /proc/cpuinfo "model name"
	MemTotal   string `json:"mem_total"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go"` // of the sensorgate binary
	Mosquitto  string `json:"mosquitto"`
	InfluxDB   string `json:"influxdb"`
	WorkFS     string `json:"work_fs"` // filesystem of the spool and broker files: fsync cost depends on it
	LoadAvg    string `json:"loadavg"` // at the start: the machine is shared
	Sensorgate string `json:"sensorgate"`
}

// describeMachine gathers what it can; a missing detail is "?" rather than
// an error, since it never changes the measurement.
func describeMachine(sensorgateBin, workDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPUModel: "?", MemTotal: "?", Kernel: "?", GoVersion: "?",
		Mosquitto: "?", InfluxDB: "?", WorkFS: "?", LoadAvg: "?", Sensorgate: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if mm := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); mm != nil {
			m.CPUModel = strings.TrimSpace(string(mm[1]))
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if mm := regexp.MustCompile(`(?m)^MemTotal:\s*(\d+) kB`).FindSubmatch(b); mm != nil {
			var kb int
			fmt.Sscan(string(mm[1]), &kb)
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if bi, err := buildinfo.ReadFile(sensorgateBin); err == nil {
		m.GoVersion = bi.GoVersion
		m.Sensorgate = vcsRevision(bi)
	}
	if m.Sensorgate == "?" {
		// Built outside a git checkout: the version stamped with
		// -ldflags "-X main.version=…", if any.
		out, err := exec.Command(sensorgateBin, "version").Output()
		if v := strings.TrimSpace(strings.TrimPrefix(string(out), "sensorgate")); err == nil && v != "" && v != "dev" {
			m.Sensorgate = v
		}
	}
	if m.Sensorgate == "?" {
		m.Sensorgate = gitRevision()
	}
	// mosquitto -h prints "mosquitto version X" and exits non-zero, so
	// only its output counts.
	out, _ := exec.Command(mosquittoPath(), "-h").CombinedOutput()
	if mm := regexp.MustCompile(`mosquitto version (\S+)`).FindSubmatch(out); mm != nil {
		m.Mosquitto = string(mm[1])
	}
	m.InfluxDB = influxdVersion()
	m.WorkFS = filesystemOf(workDir)
	return m
}

func vcsRevision(bi *buildinfo.BuildInfo) string {
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "?"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += " + uncommitted changes"
	}
	return rev
}

// gitRevision is the fallback for a binary built without VCS stamping
// (go build -buildvcs=false, or from a source tree without .git): the
// working tree the tool runs in. Changed Markdown files do not count as
// uncommitted changes: none is built into the daemon, and the results
// file itself changes with every set the benchmark appends.
func gitRevision() string {
	rev, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "?"
	}
	tree := strings.TrimSpace(string(rev))
	changed, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)*.md").Output()
	switch {
	case err != nil:
		tree += ", uncommitted changes unknown"
	case len(bytes.TrimSpace(changed)) > 0:
		tree += " + uncommitted changes"
	}
	return "? (binary without VCS stamp; the tree here is " + tree + ")"
}

func mosquittoPath() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	return "/usr/sbin/mosquitto"
}

// influxdVersion reads the module version from the influxd binary: a `go
// install …@v1.8.10` build reports "unknown" from `influxd version`, but
// its build info names the module version.
func influxdVersion() string {
	cands := []string{}
	if p, err := exec.LookPath("influxd"); err == nil {
		cands = append(cands, p)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			cands = append(cands, filepath.Join(strings.TrimSpace(lines[0]), "influxd"))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				cands = append(cands, filepath.Join(gp, "bin", "influxd"))
			}
		}
	}
	for _, p := range cands {
		if bi, err := buildinfo.ReadFile(p); err == nil {
			return strings.TrimPrefix(bi.Main.Version, "v")
		}
	}
	return "?"
}

// filesystemOf names the mount holding dir (longest matching mount point
// in /proc/mounts): an fsync on tmpfs costs nothing, on ext4 it does.
func filesystemOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "?"
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "?"
	}
	best, bestLen := "?", -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > bestLen {
			best, bestLen = fmt.Sprintf("%s on %s (%s)", f[2], mp, f[0]), len(mp)
		}
	}
	return best
}

// line describes the machine in one line of a report.
func (m Machine) line() string {
	return fmt.Sprintf("%d CPUs, %s, %s RAM, %s; load average at start %s (shared machine: expect noise)",
		m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.LoadAvg)
}
