package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. It is 100 on
// every Linux architecture Go supports (the kernel's USER_HZ, not HZ).
const userHZ = 100

// statTicks sums the clock-tick fields of /proc/PID/stat at the given
// indexes, counted after the command name: 11 and 12 are utime and
// stime (fields 14 and 15), 13 and 14 cutime and cstime. The command
// name in parentheses may contain spaces, so fields are counted from its
// closing parenthesis.
func statTicks(pid int, idx ...int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: cpu time of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+2:])
	var ticks uint64
	for _, k := range idx {
		if k >= len(f) {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f))
		}
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: field %q", pid, f[k])
		}
		ticks += v
	}
	return ticks, nil
}

// cpuSeconds returns a process's user+system CPU time (all threads).
func cpuSeconds(pid int) (float64, error) {
	t, err := statTicks(pid, 11, 12)
	return float64(t) / userHZ, err
}

// machineBusySeconds returns the CPU time all of the machine's CPUs have
// spent on work since boot, from the first line of /proc/stat: user,
// nice, system, irq and softirq. Idle and I/O wait are not work; steal is
// time the hypervisor gave to other guests, never this machine's.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: machine CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseBusy(line)
}

// parseBusy reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal ..., in USER_HZ ticks.
func parseBusy(line string) (float64, error) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("bench: /proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/stat: field %d %q: %w", i, f[i], err)
		}
		busy += v
	}
	return float64(busy) / userHZ, nil
}

// ioCalls returns a process's read and write system calls so far (syscr
// and syscw of /proc/PID/io: read, pread, readv and their write
// counterparts, on files and sockets alike).
func ioCalls(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: system calls of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: /proc/%d/io: %s %q: %w", pid, k, v, err)
		}
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, nil
}

// peakRSSKiB returns VmHWM, the process's peak resident set size, from
// /proc/PID/status.
func peakRSSKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: peak RSS of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("bench: VmHWM %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("bench: no VmHWM in /proc/%d/status", pid)
}

// connectedTo reports whether the process holds an established TCP
// connection to the loopback port: the consumer has reached the broker.
// It reads the kernel's tables rather than the broker's log, so it is the
// same test for sensorgate and the no-op subscriber and does not depend on
// how the broker logs (Mosquitto started as root cannot write its log file
// once it has dropped to its own user).
func connectedTo(pid, port int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, fmt.Errorf("bench: sockets of %d: %w", pid, err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			sockets[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false, fmt.Errorf("bench: tcp table: %w", err)
	}
	// Lines: sl local_address rem_address st tx:rx tr:when retrnsmt uid
	// timeout inode …; addresses are hex IP:port, st 01 is ESTABLISHED.
	remote := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[2] == remote && f[3] == "01" && sockets[f[9]] {
			return true, nil
		}
	}
	return false, nil
}

// treeCPUSeconds is cpuSeconds of a process with its children: those it
// has waited for (cutime and cstime) and those still running, each with
// theirs. sensorgate runs JavaScript codecs in child processes, whose CPU
// is the daemon's work as much as its own.
func treeCPUSeconds(pid int) (float64, error) {
	ticks, err := statTicks(pid, 11, 12, 13, 14) // utime stime cutime cstime
	if err != nil {
		return 0, err
	}
	total := float64(ticks) / userHZ
	for _, child := range childPIDs(pid) {
		if c, err := treeCPUSeconds(child); err == nil { // gone meanwhile: its parent's cutime has it
			total += c
		}
	}
	return total, nil
}

// childPIDs lists the running children of a process, of all its threads.
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, k := range strings.Fields(string(kids)) {
			if child, err := strconv.Atoi(k); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

// childrenRSSKiB sums VmRSS over a process's descendants (sensorgate's
// JavaScript codec workers), not the process itself.
func childrenRSSKiB(pid int) int {
	total := 0
	for _, child := range childPIDs(pid) {
		if v, err := rssKiB(child); err == nil { // gone meanwhile: nothing resident
			total += v + childrenRSSKiB(child)
		}
	}
	return total
}

// schedStat is a process's scheduler counters, summed over its threads
// (/proc/PID/task/*/schedstat): CPU time, time spent runnable waiting
// for a CPU, and how many times a thread was put on a CPU. A thread that
// has ended takes its counts with it; the daemon's threads live as long
// as it does.
type schedStat struct {
	RunNs, WaitNs, Slices uint64
}

func readSchedStat(pid int) (schedStat, error) {
	var st schedStat
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return st, fmt.Errorf("bench: scheduler counters of %d: %w", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // ended meanwhile
		}
		t, err := parseSchedStat(string(b))
		if err != nil {
			return st, fmt.Errorf("bench: /proc/%d/task/%s/schedstat: %w", pid, task.Name(), err)
		}
		st.RunNs += t.RunNs
		st.WaitNs += t.WaitNs
		st.Slices += t.Slices
	}
	return st, nil
}

// parseSchedStat reads one schedstat line: "run_ns wait_ns timeslices".
func parseSchedStat(line string) (schedStat, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return schedStat{}, fmt.Errorf("want 3 fields, got %q", line)
	}
	var v [3]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return schedStat{}, fmt.Errorf("field %q: %w", f[i], err)
		}
		v[i] = n
	}
	return schedStat{RunNs: v[0], WaitNs: v[1], Slices: v[2]}, nil
}
