package sandbox

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill a worker when the daemon dies
// (SIGKILL, a crash): a worker stuck in a runaway codec would never read
// the end of its stdin.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
